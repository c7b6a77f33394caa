import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { findNatsServer, freePort, NatsServerNotFoundError, NatsServerStartError, startNatsServer } from './index.ts';

describe('freePort', () => {
  it('returns a port that can be bound', async () => {
    const port = await freePort();
    assert.ok(port > 0 && port < 65536);
    const srv = net.createServer();
    await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(port, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  });
});

describe('findNatsServer', () => {
  it('names the binary and how to install it when missing', () => {
    assert.throws(() => findNatsServer({ NATS_SERVER_BIN: '/nonexistent/nats-server' }), {
      name: 'NatsServerNotFoundError',
      message: /NATS_SERVER_BIN=\/nonexistent\/nats-server is not an executable file; install it with `apt-get install nats-server`/,
    });
  });
  it('reports a missing binary from startNatsServer too', async () => {
    await assert.rejects(startNatsServer({ bin: '/nonexistent/nats-server' }), (err: unknown) => {
      assert.ok(err instanceof NatsServerNotFoundError);
      assert.match(err.message, /cannot run \/nonexistent\/nats-server \(ENOENT\); install it with `apt-get install nats-server`/);
      return true;
    });
  });
});

describe('startNatsServer', () => {
  it('starts on a free port, serves clients, and cleans up on stop', async () => {
    const srv = await startNatsServer();
    try {
      assert.equal(srv.url, `nats://127.0.0.1:${srv.port}`);
      assert.ok(existsSync(srv.storeDir));
      const nc = await connect({ servers: srv.url });
      const sub = nc.subscribe('t.hello', { max: 1 });
      nc.publish('t.hello', 'hi');
      for await (const m of sub) assert.equal(m.string(), 'hi');
      assert.equal(nc.info?.jetstream, true);
      await nc.close();
    } finally {
      await srv.stop();
    }
    assert.equal(existsSync(srv.storeDir), false);
    assert.equal(srv.pid, undefined);
    await srv.stop(); // idempotent
  });

  it('restart keeps the port and the JetStream data', async () => {
    await using srv = await startNatsServer();
    const port = srv.port;
    let nc = await connect({ servers: srv.url });
    const kv = await new Kvm(nc).create('harness', { history: 1 });
    await kv.put('k', 'v1');
    await nc.close();

    await srv.restart();
    assert.equal(srv.port, port);
    nc = await connect({ servers: srv.url });
    const kv2 = await new Kvm(nc).open('harness');
    assert.equal((await kv2.get('k'))?.string(), 'v1');
    await nc.close();
  });

  it('kill is a crash: clients see the server go, restart recovers the data', async () => {
    await using srv = await startNatsServer();
    const nc = await connect({ servers: srv.url, reconnect: false });
    const kv = await new Kvm(nc).create('crash', { history: 1 });
    await kv.put('k', 'v1');
    const closed = nc.closed();
    await srv.kill();
    assert.equal(srv.pid, undefined);
    await closed;
    await assert.rejects(connect({ servers: srv.url, reconnect: false }));

    await srv.restart();
    const nc2 = await connect({ servers: srv.url });
    assert.equal((await (await new Kvm(nc2).open('crash')).get('k'))?.string(), 'v1');
    await nc2.close();
  });

  it('can run without JetStream and with extra args', async () => {
    await using srv = await startNatsServer({ jetstream: false, args: ['--server_name', 'harness-test'] });
    const nc = await connect({ servers: srv.url });
    assert.equal(nc.info?.jetstream ?? false, false);
    assert.equal(nc.info?.server_name, 'harness-test');
    await nc.close();
  });

  it('fails clearly when the port is taken', async () => {
    const blocker = net.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      await assert.rejects(startNatsServer({ port, startTimeoutMs: 5000 }), (err: unknown) => {
        assert.ok(err instanceof NatsServerStartError);
        assert.match(err.message, new RegExp(`exited \\(1\\) before accepting clients on port ${port}`));
        assert.match(err.message, /address already in use/);
        return true;
      });
    } finally {
      blocker.close();
    }
  });
});
