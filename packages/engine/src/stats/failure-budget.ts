/**
 * Per-script failure budget. A script that faults on nearly every call, or
 * keeps hitting the expensive limits (time, memory, stack: each such fault
 * costs up to a whole time budget of the shared VM), is paused for a while so
 * it cannot starve the scripts sharing its VM; each further pause doubles, up
 * to a cap. A script that faults now and then never trips it.
 */
export interface FailurePolicy {
  /** Calls per judging window. */
  windowCalls: number;
  /** Fraction of faulty calls in a window that pauses the script (0..1]. */
  failureRatio: number;
  /** Time/memory/stack faults within `expensiveWindowMs` that pause the script. */
  maxExpensiveFaults: number;
  expensiveWindowMs: number;
  /** First pause, ms; doubles per repeated pause. */
  pauseMs: number;
  /** Longest pause, ms. */
  maxPauseMs: number;
}

export const DEFAULT_FAILURE_POLICY: FailurePolicy = {
  windowCalls: 50,
  failureRatio: 0.9,
  maxExpensiveFaults: 3,
  expensiveWindowMs: 10_000,
  pauseMs: 10_000,
  maxPauseMs: 5 * 60_000,
};

export class FailureBudget {
  private calls = 0;
  private faults = 0;
  private pauses = 0;
  private readonly expensiveAt: number[] = [];
  pausedUntil = 0;
  private readonly policy: FailurePolicy;

  constructor(policy: FailurePolicy) {
    this.policy = policy;
  }

  get paused(): boolean {
    return this.pausedUntil > 0;
  }

  /** Accounts `calls` calls with `faults` faults. Returns the pause in ms when the script must pause now, else 0. */
  account(calls: number, faults: number, now: number): number {
    if (calls <= 0 || this.paused) return 0;
    this.calls += calls;
    this.faults += faults;
    if (this.calls < this.policy.windowCalls) return 0;
    const ratio = this.faults / this.calls;
    this.calls = 0;
    this.faults = 0;
    if (ratio >= this.policy.failureRatio) return this.pause(now);
    if (ratio === 0) this.pauses = 0; // a clean window forgives earlier pauses
    return 0;
  }

  /** Accounts one time/memory/stack fault. Returns the pause in ms when the script must pause now, else 0. */
  expensive(now: number): number {
    if (this.paused) return 0;
    this.expensiveAt.push(now);
    while (this.expensiveAt.length > 0 && this.expensiveAt[0] < now - this.policy.expensiveWindowMs) this.expensiveAt.shift();
    if (this.expensiveAt.length >= this.policy.maxExpensiveFaults) return this.pause(now);
    return 0;
  }

  private pause(now: number): number {
    const ms = Math.min(this.policy.maxPauseMs, this.policy.pauseMs * 2 ** this.pauses);
    this.pauses++;
    this.pausedUntil = now + ms;
    this.calls = 0;
    this.faults = 0;
    this.expensiveAt.length = 0;
    return ms;
  }

  /** Ends the pause when due; returns true when the script should resume now. */
  maybeResume(now: number): boolean {
    if (this.pausedUntil > 0 && now >= this.pausedUntil) {
      this.pausedUntil = 0;
      return true;
    }
    return false;
  }
}
