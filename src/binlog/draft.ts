import type { BinlogEvent, GtidPosition } from './events.ts';

/**
 * A segment being assembled: its byte range and what its manifest says, folded in event by event,
 * so memory stays O(segments), not O(events), however many small events are pending.
 */
export interface SegmentDraft {
  start: number;
  end: number;
  firstTimestamp: number;
  lastTimestamp: number;
  first: GtidPosition;
  last: GtidPosition;
  transactions: number;
  nextFile: string | null;
  /** When its first event arrived (agent clock): the age that cuts it. */
  since: number;
}

/**
 * Pure: folds events into drafts of at most `limit` bytes (a single larger event gets a draft of
 * its own). Returns the drafts closed by size; `open` is the one still filling.
 */
export class DraftBuilder {
  readonly #limit: number;
  open: SegmentDraft | undefined;
  #offset: number;

  constructor(offset: number, limit: number) {
    this.#offset = offset;
    this.#limit = limit;
  }

  /** Bytes fetched and framed but not yet in a committed segment start here. */
  get offset(): number {
    return this.#offset;
  }

  add(event: BinlogEvent, now: number): SegmentDraft | undefined {
    let closed: SegmentDraft | undefined;
    if (this.open && event.end - this.open.start > this.#limit) closed = this.close();
    const draft = (this.open ??= {
      start: this.#offset,
      end: this.#offset,
      firstTimestamp: event.timestamp,
      lastTimestamp: event.timestamp,
      first: new Map(),
      last: new Map(),
      transactions: 0,
      nextFile: null,
      since: now,
    });
    draft.end = event.end;
    draft.lastTimestamp = event.timestamp;
    if (event.gtid) {
      draft.transactions++;
      if (!draft.first.has(event.gtid.domain)) draft.first.set(event.gtid.domain, event.gtid);
      draft.last.set(event.gtid.domain, event.gtid);
    }
    if (event.rotateTo !== undefined) draft.nextFile = event.rotateTo;
    return closed;
  }

  close(): SegmentDraft | undefined {
    const draft = this.open;
    this.open = undefined;
    if (draft) this.#offset = draft.end;
    return draft;
  }
}
