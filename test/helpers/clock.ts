import type { Clock } from '../../src/domain/clock.js';

/** A clock tests move by hand. Starts at the real time so signed instants look ordinary. */
export class FakeClock implements Clock {
  private t: number;
  constructor(start = Date.now()) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}
