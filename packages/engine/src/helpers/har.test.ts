import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildHar } from './har.ts';

type Json = Record<string, any>;

/** buildHar's log, typed loosely for the assertions. */
function har(items: unknown[]): Json {
  return buildHar(items) as Json;
}

/** A Kubeshark HTTP item with headers as maps. */
function mapItem(): Json {
  return {
    id: '1-1',
    stream: '000042',
    protocol: { name: 'http', version: '1.1', abbr: 'HTTP', macro: 'http', layer3: 'IP', layer4: 'TCP' },
    src: { ip: '10.0.0.1', port: '40000', name: 'client', namespace: 'ns' },
    dst: { ip: '10.0.0.2', port: '8080', name: 'orders', namespace: 'shop' },
    timestamp: 1_700_000_000_000,
    startTime: '2023-11-14T22:13:20.000Z',
    elapsedTime: 12.5,
    request: {
      method: 'POST',
      path: '/api/v1/orders',
      url: '/api/v1/orders?x=1',
      httpVersion: 'HTTP/1.1',
      headers: { Host: 'orders:8080', 'Content-Type': 'application/json', Accept: ['a/b', 'c/d'] },
      cookies: { session: 'abc' },
      queryString: { x: '1' },
      postData: { mimeType: 'application/json', text: '{"n":1}' },
      bodySize: 7,
      headersSize: 120,
    },
    response: {
      status: 201,
      statusText: 'Created',
      httpVersion: 'HTTP/1.1',
      headers: { 'Content-Type': 'application/json', Location: '/api/v1/orders/7' },
      cookies: {},
      content: { mimeType: 'application/json', size: 9, text: '{"id":7}', encoding: 'utf-8' },
      bodySize: 9,
      headersSize: 80,
    },
  };
}

/** The same exchange with headers, cookies and query as [{name, value}] lists. */
function listItem(): Json {
  const it = mapItem();
  it.request.headers = [{ name: 'Host', value: 'orders:8080' }, { name: 'Content-Type', value: 'application/json' }, { name: 'Accept', value: 'a/b' }, { name: 'Accept', value: 'c/d' }];
  it.request.cookies = [{ name: 'session', value: 'abc' }];
  it.request.queryString = [{ name: 'x', value: '1' }];
  it.response.headers = [{ name: 'Content-Type', value: 'application/json' }, { name: 'Location', value: '/api/v1/orders/7' }];
  it.response.cookies = [];
  return it;
}

describe('buildHar', () => {
  it('produces a HAR 1.2 log', () => {
    const h = har([mapItem()]);
    assert.equal(h.log.version, '1.2');
    assert.equal(h.log.creator.name, 'wirescript');
    assert.equal(typeof h.log.creator.version, 'string');
    assert.deepEqual(h.log.pages, []);
    assert.equal(h.log.entries.length, 1);
  });

  it('maps a Kubeshark HTTP item to an entry', () => {
    const e = har([mapItem()]).log.entries[0];
    assert.equal(e.startedDateTime, '2023-11-14T22:13:20.000Z');
    assert.equal(e.time, 12.5);
    assert.equal(e.serverIPAddress, '10.0.0.2');
    assert.equal(e.connection, '000042');
    assert.deepEqual(e.cache, {});
    assert.deepEqual(e.timings, { send: 0, wait: 12.5, receive: 0 });

    assert.equal(e.request.method, 'POST');
    assert.equal(e.request.url, 'http://orders:8080/api/v1/orders?x=1');
    assert.equal(e.request.httpVersion, 'HTTP/1.1');
    assert.deepEqual(e.request.headers, [
      { name: 'Host', value: 'orders:8080' },
      { name: 'Content-Type', value: 'application/json' },
      { name: 'Accept', value: 'a/b' },
      { name: 'Accept', value: 'c/d' },
    ]);
    assert.deepEqual(e.request.cookies, [{ name: 'session', value: 'abc' }]);
    assert.deepEqual(e.request.queryString, [{ name: 'x', value: '1' }]);
    assert.deepEqual(e.request.postData, { mimeType: 'application/json', text: '{"n":1}' });
    assert.equal(e.request.bodySize, 7);
    assert.equal(e.request.headersSize, 120);

    assert.equal(e.response.status, 201);
    assert.equal(e.response.statusText, 'Created');
    assert.equal(e.response.httpVersion, 'HTTP/1.1');
    assert.deepEqual(e.response.content, { size: 9, mimeType: 'application/json', text: '{"id":7}', encoding: 'utf-8' });
    assert.equal(e.response.redirectURL, '/api/v1/orders/7');
    assert.equal(e.response.bodySize, 9);
    assert.equal(e.response.headersSize, 80);
  });

  it('accepts headers, cookies and query strings as [{name, value}] lists too, with the same result', () => {
    assert.deepEqual(har([listItem()]), har([mapItem()]));
  });

  it('fills what HAR requires when the item lacks it', () => {
    const e = har([{ protocol: { name: 'http', version: '2.0' }, timestamp: 0, request: { path: 'x' } }]).log.entries[0];
    assert.equal(e.request.method, 'GET');
    assert.equal(e.request.url, 'http://unknown/x');
    assert.equal(e.request.httpVersion, 'HTTP/2.0');
    assert.deepEqual(e.request.headers, []);
    assert.equal(e.request.headersSize, -1);
    assert.equal(e.request.bodySize, -1);
    assert.equal(e.request.postData, undefined);
    assert.equal(e.response.status, 0);
    assert.equal(e.response.statusText, '');
    assert.deepEqual(e.response.content, { size: 0, mimeType: '' });
    assert.equal(e.response.redirectURL, '');
    assert.equal(e.startedDateTime, '1970-01-01T00:00:00.000Z');
    assert.equal(e.time, 0);
  });

  it('builds the URL from dst when there is no Host header, and keeps absolute URLs', () => {
    const noHost = mapItem();
    noHost.request.headers = {};
    assert.equal(har([noHost]).log.entries[0].request.url, 'http://10.0.0.2:8080/api/v1/orders?x=1');
    const abs = mapItem();
    abs.request.url = 'https://example.com/a';
    assert.equal(har([abs]).log.entries[0].request.url, 'https://example.com/a');
    const h2 = mapItem();
    h2.request.headers = { ':authority': 'svc.local', ':scheme': 'https' };
    assert.equal(har([h2]).log.entries[0].request.url, 'https://svc.local/api/v1/orders?x=1');
  });

  it('uses the timestamp when there is no startTime', () => {
    const it = mapItem();
    delete it.startTime;
    assert.equal(har([it]).log.entries[0].startedDateTime, new Date(1_700_000_000_000).toISOString());
  });

  it('skips items of other protocols and items without a request', () => {
    const dns = { protocol: { name: 'dns' }, request: { questions: [] } };
    const h = har([dns, { protocol: { name: 'http' } }, null, 5, 'x', mapItem()]);
    assert.equal(h.log.entries.length, 1);
    assert.equal(h.log.entries[0].request.method, 'POST');
  });

  it('rejects a non-array', () => {
    assert.throws(() => buildHar({}), TypeError);
    assert.throws(() => buildHar('[]'), TypeError);
  });

  it('does not mutate the items', () => {
    const items = [mapItem(), listItem()];
    const copy = structuredClone(items);
    buildHar(items);
    assert.deepEqual(items, copy);
  });
});
