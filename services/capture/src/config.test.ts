import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CaptureConfigError, effectiveFilter, loadCaptureConfig } from './config.ts';

test('live capture leaves out the NATS port unless told not to', () => {
  const c = (env: Record<string, string>) => effectiveFilter(loadCaptureConfig(env));
  assert.equal(c({}), 'not (tcp port 4222)');
  assert.equal(c({ NATS_URL: 'nats://nats.wirescript:4333' }), 'not (tcp port 4333)');
  assert.equal(c({ CAPTURE_FILTER: 'tcp port 80 or udp port 53' }), '(tcp port 80 or udp port 53) and not (tcp port 4222)');
  assert.equal(c({ CAPTURE_FILTER: 'tcp port 80', CAPTURE_EXCLUDE_NATS: 'false' }), 'tcp port 80');
  assert.equal(c({ CAPTURE_EXCLUDE_NATS: 'false' }), '');
});

test('a bad REPLAY_SPEED is a configuration error naming the variable', () => {
  assert.throws(() => loadCaptureConfig({ REPLAY_SPEED: 'fast' }), (e: Error) => e instanceof CaptureConfigError && /REPLAY_SPEED/.test(e.message));
  assert.equal(loadCaptureConfig({ REPLAY_SPEED: '2.5' }).replaySpeed, '2.5');
});
