import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  HUB_ACTIONS_CONSUMER,
  HUB_ACTIONS_STREAM,
  HUB_ACTIONS_SUBJECT,
  HUB_NODE_NAME,
  ITEMS_WILDCARD,
  itemsFilter,
  itemsSubject,
  JOBS_CONTROL_SUBJECT,
  JOBS_WILDCARD,
  jobsFilter,
  jobsSubject,
  LOGS_WILDCARD,
  logsFilter,
  logsSubject,
  PACKETS_WILDCARD,
  packetsSubject,
  PODS_WILDCARD,
  podsSubject,
  RUNNER_QUEUE_GROUP,
  SCRIPTS_KV_BUCKET,
  SCRIPTS_KV_KEY,
  STATUS_WILDCARD,
  statusFilter,
  statusSubject,
  subjectToken,
} from './subjects.ts';

describe('subjectToken', () => {
  const cases: [string, string][] = [
    ['node-a', 'node-a'],
    ['ip-10-0-0-1.ec2.internal', 'ip-10-0-0-1_ec2_internal'],
    ['a*b', 'a_b'],
    ['a>b', 'a_b'],
    ['>', '_'],
    ['*', '_'],
    ['.', '_'],
    ['a b\tc\nd\re', 'a_b_c_d_e'],
    ['nbsp\u00a0x', 'nbsp_x'],
    ['ctrl\u0000\u0007\u007fz', 'ctrl___z'],
    ['', '_'],
    ['Ünïcødé-名前', 'Ünïcødé-名前'],
    ['under_score-and-dash:colon', 'under_score-and-dash:colon'],
    ['...', '___'],
  ];
  for (const [input, want] of cases) {
    test(`${JSON.stringify(input)} -> ${JSON.stringify(want)}`, () => {
      assert.equal(subjectToken(input), want);
    });
  }

  test('missing values become _', () => {
    assert.equal(subjectToken(undefined as unknown as string), '_');
    assert.equal(subjectToken(null as unknown as string), '_');
  });

  test('the result is always one valid token', () => {
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const alphabet = ['a', 'Z', '0', '-', '_', '.', '*', '>', ' ', '\t', '\n', '\u0000', 'é', '\u2028', '\u3000'];
    for (let i = 0; i < 2000; i++) {
      const s = Array.from({ length: Math.floor(rand() * 12) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
      const tok = subjectToken(s);
      assert.ok(tok.length > 0, JSON.stringify(s));
      assert.doesNotMatch(tok, /[.*>\s\u0000-\u001f\u007f]/u, JSON.stringify(s));
      if (s !== '') assert.equal([...tok].length, [...s].length, 'one character per character');
    }
  });
});

describe('subject builders', () => {
  test('items', () => {
    assert.equal(itemsSubject('node-a', 'http'), 'ws.items.node-a.http');
    assert.equal(itemsSubject('ip-10.0.0.1', 'dns'), 'ws.items.ip-10_0_0_1.dns');
    assert.equal(itemsSubject('', ''), 'ws.items._._');
    assert.equal(ITEMS_WILDCARD, 'ws.items.>');
    assert.equal(itemsFilter(), 'ws.items.*.*');
    assert.equal(itemsFilter('node-a'), 'ws.items.node-a.*');
    assert.equal(itemsFilter('', 'redis'), 'ws.items.*.redis');
    assert.equal(itemsFilter('*', '>'), 'ws.items._._', 'a filter value is a name, never a wildcard');
  });

  test('packets and pods', () => {
    assert.equal(packetsSubject('node-a'), 'ws.packets.node-a');
    assert.equal(PACKETS_WILDCARD, 'ws.packets.>');
    assert.equal(podsSubject('kube-system'), 'ws.pods.kube-system');
    assert.equal(podsSubject('a.b'), 'ws.pods.a_b');
    assert.equal(PODS_WILDCARD, 'ws.pods.>');
  });

  test('hub actions, scripts KV and queue group', () => {
    assert.equal(HUB_ACTIONS_SUBJECT, 'ws.hub.actions');
    assert.equal(HUB_ACTIONS_STREAM, 'WS_HUB_ACTIONS');
    assert.equal(HUB_ACTIONS_CONSUMER, 'hub');
    assert.equal(SCRIPTS_KV_BUCKET, 'ws_scripts');
    assert.equal(SCRIPTS_KV_KEY, 'active');
    assert.equal(RUNNER_QUEUE_GROUP, 'script-runner');
    assert.equal(HUB_NODE_NAME, 'hub');
  });

  test('logs, jobs and status', () => {
    assert.equal(logsSubject('node-a', 'runner-1'), 'ws.logs.node-a.runner-1');
    assert.equal(logsSubject(HUB_NODE_NAME, 'hub 0'), 'ws.logs.hub.hub_0');
    assert.equal(LOGS_WILDCARD, 'ws.logs.>');
    assert.equal(logsFilter(undefined, 'r1'), 'ws.logs.*.r1');
    assert.equal(jobsSubject('node-a', 'runner-1'), 'ws.jobs.node-a.runner-1');
    assert.equal(JOBS_WILDCARD, 'ws.jobs.>');
    assert.equal(jobsFilter('n'), 'ws.jobs.n.*');
    assert.equal(JOBS_CONTROL_SUBJECT, 'ws.control.jobs');
    assert.equal(statusSubject('script-runner', 'runner-1'), 'ws.status.script-runner.runner-1');
    assert.equal(STATUS_WILDCARD, 'ws.status.>');
    assert.equal(statusFilter('hub'), 'ws.status.hub.*');
  });

  test('hostile names never add tokens or wildcards', () => {
    const nasty = ['a.b.c', '>', '*', ' ', '', 'x.>', 'a\nb'];
    for (const a of nasty) {
      for (const b of nasty) {
        for (const [subject, tokens] of [
          [itemsSubject(a, b), 4],
          [packetsSubject(a), 3],
          [podsSubject(a), 3],
          [logsSubject(a, b), 4],
          [jobsSubject(a, b), 4],
          [statusSubject(a, b), 4],
        ] as const) {
          const parts = subject.split('.');
          assert.equal(parts.length, tokens, subject);
          assert.ok(parts.every((p) => p.length > 0 && !/[*>\s]/.test(p)), subject);
        }
      }
    }
  });
});
