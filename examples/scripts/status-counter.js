// Status counter: API calls by response status and by endpoint, reported every 10 s and consolidated on the hub
var byStatus = {};
var byEndpoint = {};
var total = 0;
// What this worker has not sent to the hub yet: the hub adds up deltas, so a report is never counted twice.
var unsent = {};

function onItemCaptured(data) {
  var status = String(data.response.status);
  var endpoint = data.request.method + ' ' + data.request.path.replace(/\/\d+$/, '/:id');
  byStatus[status] = (byStatus[status] || 0) + 1;
  unsent[status] = (unsent[status] || 0) + 1;
  byEndpoint[endpoint] = (byEndpoint[endpoint] || 0) + 1;
  total++;
}

function report() {
  if (utils.nodeName() === 'hub') return;
  console.log('calls:', total, 'by status:', byStatus);
  hub.action('status-counts', { node: utils.nodeName(), byStatus: unsent });
  unsent = {};
}

// The hub joins the counts every worker sends.
var totals = {};
function onHubAction(action, object) {
  if (action !== 'status-counts') return;
  totals = wrapper.joinMaps(totals, object.byStatus);
}

function hubReport() {
  if (utils.nodeName() !== 'hub') return;
  console.log('cluster totals by status:', totals);
}

jobs.schedule('report-status-counts', '*/10 * * * * *', report);
jobs.schedule('hub-report', '*/10 * * * * *', hubReport);
