// Slow endpoints: logs every API call slower than SLOW_MS (default 30 ms), with its pods
var threshold = env.SLOW_MS ? Number(env.SLOW_MS) : 30;

function onItemCaptured(data) {
  if (data.elapsedTime > threshold) {
    console.log('slow call:', data.request.method, data.request.path, data.response.status,
      data.elapsedTime + 'ms', data.src.name + ' -> ' + data.dst.name);
  }
}
