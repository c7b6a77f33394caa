import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_FAILURE_POLICY, FailureBudget, type FailurePolicy } from './failure-budget.ts';

const policy: FailurePolicy = {
  windowCalls: 10,
  failureRatio: 0.9,
  maxExpensiveFaults: 3,
  expensiveWindowMs: 1_000,
  pauseMs: 100,
  maxPauseMs: 350,
};

describe('FailureBudget: failure ratio', () => {
  it('does not judge before a window is full', () => {
    const b = new FailureBudget(policy);
    assert.equal(b.account(9, 9, 0), 0);
    assert.equal(b.paused, false);
  });

  it('pauses a script that fails on (nearly) every call of a window', () => {
    const b = new FailureBudget(policy);
    assert.equal(b.account(10, 9, 1000), 100);
    assert.equal(b.paused, true);
    assert.equal(b.pausedUntil, 1100);
  });

  it('judges calls accumulated over several batches', () => {
    const b = new FailureBudget(policy);
    assert.equal(b.account(4, 4, 0), 0);
    assert.equal(b.account(4, 4, 0), 0);
    assert.equal(b.account(4, 4, 0), 100);
  });

  it('never pauses a script that fails now and then', () => {
    const b = new FailureBudget(policy);
    for (let i = 0; i < 1000; i++) assert.equal(b.account(10, 8, i), 0);
    assert.equal(b.paused, false);
  });

  it('does not count calls while paused, and resumes when due', () => {
    const b = new FailureBudget(policy);
    b.account(10, 10, 0);
    assert.equal(b.account(10, 10, 50), 0, 'already paused');
    assert.equal(b.maybeResume(99), false);
    assert.equal(b.paused, true);
    assert.equal(b.maybeResume(100), true);
    assert.equal(b.paused, false);
    assert.equal(b.maybeResume(101), false, 'resumes once');
  });

  it('doubles each repeated pause, up to the cap', () => {
    const b = new FailureBudget(policy);
    const pauses: number[] = [];
    let now = 0;
    for (let i = 0; i < 4; i++) {
      pauses.push(b.account(10, 10, now));
      now = b.pausedUntil;
      assert.equal(b.maybeResume(now), true);
    }
    assert.deepEqual(pauses, [100, 200, 350, 350]);
  });

  it('a clean window forgives earlier pauses', () => {
    const b = new FailureBudget(policy);
    assert.equal(b.account(10, 10, 0), 100);
    b.maybeResume(100);
    assert.equal(b.account(10, 0, 100), 0);
    assert.equal(b.account(10, 10, 200), 100, 'back to the first pause length');
  });

  it('a window with some faults does not forgive', () => {
    const b = new FailureBudget(policy);
    assert.equal(b.account(10, 10, 0), 100);
    b.maybeResume(100);
    assert.equal(b.account(10, 1, 100), 0);
    assert.equal(b.account(10, 10, 200), 200);
  });

  it('ignores empty accounting', () => {
    const b = new FailureBudget({ ...policy, windowCalls: 1 });
    assert.equal(b.account(0, 5, 0), 0);
    assert.equal(b.paused, false);
  });
});

describe('FailureBudget: expensive faults', () => {
  it('pauses after maxExpensiveFaults within the window', () => {
    const b = new FailureBudget(policy);
    assert.equal(b.expensive(0), 0);
    assert.equal(b.expensive(10), 0);
    assert.equal(b.expensive(20), 100);
    assert.equal(b.pausedUntil, 120);
  });

  it('forgets expensive faults older than the window', () => {
    const b = new FailureBudget(policy);
    assert.equal(b.expensive(0), 0);
    assert.equal(b.expensive(500), 0);
    assert.equal(b.expensive(1600), 0, 'the first two are out of the window');
    assert.equal(b.expensive(1700), 0);
    assert.equal(b.expensive(1800), 100);
  });

  it('does not count expensive faults while paused, and starts afresh after', () => {
    const b = new FailureBudget(policy);
    b.expensive(0); b.expensive(0); b.expensive(0);
    assert.equal(b.expensive(50), 0);
    assert.equal(b.maybeResume(100), true);
    assert.equal(b.expensive(100), 0);
    assert.equal(b.expensive(100), 0);
    assert.equal(b.expensive(100), 200, 'second pause doubles');
  });
});

describe('DEFAULT_FAILURE_POLICY', () => {
  it('is sane', () => {
    const p = DEFAULT_FAILURE_POLICY;
    assert.ok(p.windowCalls >= 10);
    assert.ok(p.failureRatio > 0.5 && p.failureRatio <= 1);
    assert.ok(p.maxExpensiveFaults >= 2);
    assert.ok(p.pauseMs > 0 && p.pauseMs <= p.maxPauseMs);
  });
});
