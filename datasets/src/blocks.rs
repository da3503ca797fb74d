//! Cutting a token shard into fixed-length blocks, in a seeded order, epoch after epoch.
//!
//! Epoch 0 cuts the shard at multiples of the block length; each later epoch shifts the cuts by
//! a seeded offset below one block, so a small corpus is not seen in the same windows twice.
//! Within an epoch no token is in two blocks, and only the tail shorter than a block (plus the
//! offset) is left out. The position in this stream is one number, the *cursor*: how many
//! blocks were taken so far. It is saved in checkpoints; the same seed and cursor give the same
//! blocks.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::prepare::unit_hash;
use crate::shard::TokenShard;

/// The seeded, endless stream of block start positions over a shard.
pub struct BlockStream {
    n_tokens: usize,
    block_len: usize,
    seed: u64,
    /// Epoch whose order is cached, its first cursor, offset and block order.
    epoch: Option<(u64, u64, usize, Vec<u32>)>,
}

impl BlockStream {
    /// A stream over a shard of `n_tokens` tokens.
    ///
    /// # Panics
    /// If the shard holds less than one block.
    pub fn new(n_tokens: usize, block_len: usize, seed: u64) -> Self {
        assert!(n_tokens >= block_len && block_len > 0, "shard shorter than one block");
        Self {
            n_tokens,
            block_len,
            seed,
            epoch: None,
        }
    }

    fn offset(&self, epoch: u64) -> usize {
        if epoch == 0 {
            0
        } else {
            (unit_hash(self.seed ^ 0x000F_F5E7, epoch) * self.block_len as f64) as usize
        }
    }

    /// Blocks in an epoch.
    pub fn blocks_in_epoch(&self, epoch: u64) -> u64 {
        ((self.n_tokens - self.offset(epoch)) / self.block_len) as u64
    }

    /// Start positions of the `count` blocks at `cursor, cursor + 1, ...`.
    pub fn starts(&mut self, cursor: u64, count: usize) -> Vec<usize> {
        (cursor..cursor + count as u64).map(|c| self.start(c)).collect()
    }

    fn start(&mut self, cursor: u64) -> usize {
        let cached = self
            .epoch
            .as_ref()
            .is_some_and(|(_, first, _, order)| cursor >= *first && cursor < first + order.len() as u64);
        if !cached {
            // Walk epochs from the cached one (or from the start when going backwards).
            let (mut epoch, mut first) = match &self.epoch {
                Some((epoch, first, _, _)) if cursor >= *first => (*epoch, *first),
                _ => (0, 0),
            };
            while cursor >= first + self.blocks_in_epoch(epoch) {
                first += self.blocks_in_epoch(epoch);
                epoch += 1;
            }
            let mut order: Vec<u32> = (0..self.blocks_in_epoch(epoch) as u32).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(self.seed.wrapping_add(epoch)));
            self.epoch = Some((epoch, first, self.offset(epoch), order));
        }
        let (_, first, offset, order) = self.epoch.as_ref().expect("filled above");
        offset + order[(cursor - first) as usize] as usize * self.block_len
    }
}

/// Start positions of up to `count` evaluation blocks, spread evenly over the shard at block
/// boundaries: the same blocks at every evaluation.
pub fn eval_starts(n_tokens: usize, block_len: usize, count: usize) -> Vec<usize> {
    let available = n_tokens / block_len;
    if available <= count {
        return (0..available).map(|i| i * block_len).collect();
    }
    (0..count).map(|i| i * available / count * block_len).collect()
}

/// Token blocks of one length laid end to end: what a batch is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocks {
    /// The tokens, [`Self::count`] × `block_len` of them.
    pub tokens: Vec<u32>,
    /// Tokens per block.
    pub block_len: usize,
}

impl Blocks {
    /// `tokens` cut into blocks of `block_len`; their length must be a multiple of it.
    pub fn new(tokens: Vec<u32>, block_len: usize) -> Self {
        assert!(
            block_len > 0 && tokens.len().is_multiple_of(block_len),
            "{} tokens are not blocks of {block_len}",
            tokens.len()
        );
        Self { tokens, block_len }
    }

    /// How many blocks there are.
    pub fn count(&self) -> usize {
        self.tokens.len() / self.block_len
    }

    /// The blocks, one slice each.
    pub fn iter(&self) -> std::slice::ChunksExact<'_, u32> {
        self.tokens.chunks_exact(self.block_len)
    }
}

/// Reads the blocks of `block_len` tokens at `starts` from a shard.
pub fn read_blocks(shard: &TokenShard, starts: &[usize], block_len: usize) -> Blocks {
    let mut out = Vec::with_capacity(starts.len() * block_len);
    for &start in starts {
        shard.read_into(start, block_len, &mut out);
    }
    Blocks::new(out, block_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_covers_every_token_once() {
        let (n, len) = (1003, 10);
        let mut stream = BlockStream::new(n, len, 42);
        assert_eq!(stream.blocks_in_epoch(0), 100);
        let mut seen = vec![0u8; n];
        for start in stream.starts(0, 100) {
            for token in &mut seen[start..start + len] {
                *token += 1;
            }
        }
        // Every token before the 3-token tail is in exactly one block.
        assert!(seen[..1000].iter().all(|&c| c == 1));
        assert!(seen[1000..].iter().all(|&c| c == 0));
    }

    #[test]
    fn later_epochs_shift_windows_and_stay_disjoint() {
        let (n, len) = (1000, 10);
        let mut stream = BlockStream::new(n, len, 7);
        let first_epoch = stream.starts(0, 100);
        let next = stream.blocks_in_epoch(1) as usize;
        let second_epoch = stream.starts(100, next);
        let offset = second_epoch.iter().min().unwrap() % len;
        assert!(second_epoch.iter().all(|s| s % len == offset));
        let mut seen = vec![0u8; n];
        for start in second_epoch {
            for token in &mut seen[start..start + len] {
                *token += 1;
            }
        }
        assert!(seen.iter().all(|&c| c <= 1));
        assert!(first_epoch.iter().all(|s| s % len == 0));
    }

    #[test]
    fn same_seed_and_cursor_give_same_blocks_in_any_order_of_reads() {
        let mut a = BlockStream::new(5000, 16, 3);
        let mut b = BlockStream::new(5000, 16, 3);
        let far = a.starts(700, 8);
        let _ = b.starts(0, 5);
        assert_eq!(b.starts(700, 8), far);
        assert_eq!(a.starts(0, 5), BlockStream::new(5000, 16, 3).starts(0, 5));
        assert_ne!(BlockStream::new(5000, 16, 4).starts(0, 5), a.starts(0, 5));
    }

    #[test]
    fn eval_blocks_are_spread_and_capped() {
        assert_eq!(eval_starts(100, 10, 20).len(), 10);
        assert_eq!(eval_starts(1000, 10, 4), vec![0, 250, 500, 750]);
    }
}
