//! Callers waiting for a resource: FIFO within a [`Priority`], with aging.
//!
//! There is one FIFO lane per priority. A waiter's effective level is its base level
//! raised by one for every [`AGING_STEP`] it has waited, capped at Critical's level;
//! so a Low waiter competes with Critical ones after 3 s and can never starve. Ties
//! go to the earliest arrival. Within a lane the oldest matching waiter is always the
//! best of that lane, so choosing the best waiter looks at no more than four
//! candidates unless a predicate has to skip non-matching ones.

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How urgent an acquisition is. Waiters are served Critical first, FIFO within a
/// priority, with aging (see [`AGING_STEP`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Priority {
    /// Served first.
    Critical,
    /// Before normal work.
    High,
    #[default]
    /// The default.
    Normal,
    /// Served last.
    Low,
}

impl Priority {
    fn lane(self) -> usize {
        match self {
            Priority::Critical => 0,
            Priority::High => 1,
            Priority::Normal => 2,
            Priority::Low => 3,
        }
    }
}

/// Every this long spent waiting raises a waiter's effective priority by one level
/// (Low → Normal after 1 s, → High after 2 s, → Critical after 3 s).
pub const AGING_STEP: Duration = Duration::from_secs(1);

const LANES: usize = 4;
/// Critical's level; aging never lifts a waiter above it, so aged waiters and
/// Critical ones are served in arrival order.
const TOP_LEVEL: u64 = LANES as u64 - 1;

/// One waiting caller.
pub(super) struct Queued<T> {
    pub id: u64,
    /// When the caller started to acquire: the base for aging and for wait times.
    pub since: Instant,
    pub item: T,
}

/// Where a waiter sits, valid until the queue is next changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    lane: usize,
    index: usize,
}

pub(super) struct WaiterQueue<T> {
    lanes: [VecDeque<Queued<T>>; LANES],
    len: usize,
    next_id: u64,
}

impl<T> WaiterQueue<T> {
    pub(super) fn new() -> Self {
        WaiterQueue {
            lanes: Default::default(),
            len: 0,
            next_id: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Queues `item` and returns its id (for [`WaiterQueue::remove`]).
    pub(super) fn push(&mut self, priority: Priority, since: Instant, item: T) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.lanes[priority.lane()].push_back(Queued { id, since, item });
        self.len += 1;
        id
    }

    pub(super) fn remove(&mut self, priority: Priority, id: u64) -> Option<T> {
        let lane = &mut self.lanes[priority.lane()];
        let index = lane.iter().position(|q| q.id == id)?;
        let queued = lane.remove(index)?;
        self.len -= 1;
        Some(queued.item)
    }

    /// The waiter to serve first among those `wants` accepts.
    pub(super) fn best(&self, now: Instant, mut wants: impl FnMut(&T) -> bool) -> Option<Position> {
        if self.len == 0 {
            return None;
        }
        let mut best: Option<(Rank, Position)> = None;
        for (lane, queue) in self.lanes.iter().enumerate() {
            let Some((index, q)) = queue.iter().enumerate().find(|(_, q)| wants(&q.item)) else {
                continue;
            };
            let key = (
                level(lane, now.saturating_duration_since(q.since)),
                Reverse(q.since),
                Reverse(q.id),
            );
            if best.as_ref().is_none_or(|(k, _)| key > *k) {
                best = Some((key, Position { lane, index }));
            }
        }
        best.map(|(_, position)| position)
    }

    pub(super) fn get(&self, position: Position) -> Option<&Queued<T>> {
        self.lanes.get(position.lane)?.get(position.index)
    }

    pub(super) fn take(&mut self, position: Position) -> Option<Queued<T>> {
        let queued = self.lanes.get_mut(position.lane)?.remove(position.index)?;
        self.len -= 1;
        Some(queued)
    }

    /// Puts back a waiter just taken from `position`, keeping its place in line.
    pub(super) fn restore(&mut self, position: Position, queued: Queued<T>) {
        if let Some(lane) = self.lanes.get_mut(position.lane) {
            lane.insert(position.index.min(lane.len()), queued);
            self.len += 1;
        }
    }

    /// How many waiters `f` accepts.
    pub(super) fn count(&self, mut f: impl FnMut(&T) -> bool) -> usize {
        self.lanes.iter().flatten().filter(|q| f(&q.item)).count()
    }

    pub(super) fn drain(&mut self) -> Vec<T> {
        self.len = 0;
        self.lanes
            .iter_mut()
            .flat_map(|lane| lane.drain(..).map(|q| q.item))
            .collect()
    }
}

/// Higher is served first: effective level, then earliest arrival, then lowest id.
type Rank = (u64, Reverse<Instant>, Reverse<u64>);

fn level(lane: usize, waited: Duration) -> u64 {
    let base = TOP_LEVEL.saturating_sub(lane as u64);
    let boost = u64::try_from(waited.as_nanos() / AGING_STEP.as_nanos()).unwrap_or(u64::MAX);
    base.saturating_add(boost).min(TOP_LEVEL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(queue: &mut WaiterQueue<&'static str>, now: Instant) -> Vec<&'static str> {
        let mut served = Vec::new();
        while let Some(position) = queue.best(now, |_| true) {
            if let Some(q) = queue.take(position) {
                served.push(q.item);
            }
        }
        served
    }

    #[tokio::test(start_paused = true)]
    async fn priority_then_fifo() {
        let now = Instant::now();
        let mut queue = WaiterQueue::new();
        queue.push(Priority::Low, now, "low");
        queue.push(Priority::Normal, now, "normal-1");
        queue.push(Priority::Critical, now, "critical");
        queue.push(Priority::Normal, now, "normal-2");
        queue.push(Priority::High, now, "high");
        assert_eq!(queue.len(), 5);
        assert_eq!(
            order(&mut queue, now),
            ["critical", "high", "normal-1", "normal-2", "low"]
        );
        assert_eq!(queue.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn aging_lifts_old_waiters() {
        let start = Instant::now();
        let mut queue = WaiterQueue::new();
        queue.push(Priority::Low, start, "old-low");
        let later = start + Duration::from_millis(3_500);
        queue.push(Priority::Critical, later, "critical");
        queue.push(Priority::High, later, "high");
        // After 3.5 s the Low waiter has Critical's level and arrived first.
        assert_eq!(order(&mut queue, later), ["old-low", "critical", "high"]);

        queue.push(Priority::Low, start, "low");
        let soon = start + Duration::from_millis(1_500);
        queue.push(Priority::High, soon, "high");
        // 1.5 s only lifts Low to Normal: High still goes first.
        assert_eq!(order(&mut queue, soon), ["high", "low"]);
    }

    #[tokio::test(start_paused = true)]
    async fn predicate_remove_restore() {
        let now = Instant::now();
        let mut queue = WaiterQueue::new();
        let a = queue.push(Priority::Normal, now, "a");
        queue.push(Priority::Normal, now, "b");
        queue.push(Priority::Normal, now, "c");
        let position = queue.best(now, |item| *item == "b");
        let Some(position) = position else {
            panic!("b is queued");
        };
        let Some(b) = queue.take(position) else {
            panic!("b is at its position");
        };
        queue.restore(position, b);
        assert_eq!(queue.remove(Priority::Normal, a), Some("a"));
        assert_eq!(queue.remove(Priority::Normal, a), None);
        assert_eq!(queue.drain(), ["b", "c"]);
        assert_eq!(queue.len(), 0);
    }
}
