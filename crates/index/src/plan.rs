//! Multi-index hashing: which tables a segment builds, and which buckets a query probes.
//!
//! # Why this is exact
//! The 256 code bits are cut into disjoint substrings, one per table. The Hamming distance of
//! two codes is the sum of the distances of their substrings, so if every table `i` had
//! substring distance greater than `t_i`, the total would be at least `Σ (t_i + 1)`. Choosing
//! per-table radii with `Σ (t_i + 1) ≥ r + 1` therefore guarantees that every code within
//! radius `r` lies within `t_i` of the query in at least one table `i` (a table with `t_i = -1`
//! is not probed). Probing, in every table, all keys within `t_i` of the query's key finds a
//! superset of the answer; every candidate is then verified with the full 256-bit distance.
//! Bits that no table covers only weaken the filter, never the guarantee.
//!
//! # Table shapes
//! * The **direct** table uses the top `direct_bits` bits of the code. Segments keep their codes
//!   sorted, so a direct bucket is a contiguous run of codes that is verified in place, with no
//!   id array and no random access.
//! * Each **indirect** table has a directory over `prefix_bits` bits and stores, per code, one
//!   `u32` packing the code's slot (low `slot_bits` bits) and the next `suffix_bits` bits of the
//!   substring. A probe that flipped `f` prefix bits keeps only entries whose suffix is within
//!   `t - f` bits, so the effective key is `prefix_bits + suffix_bits` wide at the memory cost of
//!   one `u32` per code.
//!
//! The shape (number of tables, widths) is chosen per segment from its size by the cost model
//! below, under a memory budget; the per-table radii are chosen per query radius.

/// Bits in a PDQ code.
pub(crate) const CODE_BITS: u32 = 256;

/// Largest radius a query may ask for.
///
/// PDQ's match threshold is 31; 64 leaves room for experiments. Beyond it a query returns a
/// sizeable fraction of any bank (random codes are 128 bits apart on average and a family of
/// near-duplicates spans more), so larger radii are refused rather than allowed to produce
/// unbounded output.
pub const MAX_RADIUS: u32 = 64;

/// The PDQ match threshold (distance ≤ 31), which layouts are optimised for.
pub const DEFAULT_RADIUS: u32 = 31;

/// Memory budget for tables and directories, in bytes per code.
///
/// With the 32-byte code, the 8-byte id and the tombstone bit this keeps a segment under
/// 97 bytes per hash, inside the 100-byte target.
pub(crate) const TABLE_BYTES_PER_CODE: f64 = 56.0;

/// Most tables a layout may use (one substring per table; more tables means narrower keys).
const MAX_TABLES: u32 = 16;

/// Widest directory, in bits (2^28 cells × 4 bytes = 1 GiB, reached only near 2^31 codes).
const MAX_DIRECTORY_BITS: u32 = 28;

/// Estimated costs, in nanoseconds, of the elementary steps of a query.
///
/// Fitted by least squares to the CPU time of thirteen layouts at 10 million uniform codes on
/// the reference machine (the ignored test `segment::measure::measure` prints the data; see
/// `docs/performance.md`). Only the ratios matter: they decide the layout and when a query
/// falls back to a linear scan.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CostModel {
    /// One probe: reading a directory cell (usually a cache miss) and opening a bucket.
    pub probe: f64,
    /// Filtering one packed entry of an indirect table (sequential read, 4 bytes).
    pub entry: f64,
    /// Verifying one code of a direct bucket (sequential read, 32 bytes).
    pub direct_code: f64,
    /// Verifying one candidate of an indirect table (random read of its 32-byte code).
    pub candidate: f64,
    /// Verifying one code in a linear scan (sequential, memory-bandwidth bound).
    pub linear_code: f64,
    /// Segments smaller than this build no tables: a scan of a few kilobytes beats any probe
    /// sequence, and the directories would dominate memory.
    pub min_table_entries: usize,
}

impl CostModel {
    pub(crate) const MEASURED: CostModel = CostModel {
        probe: 32.0,
        entry: 2.5,
        direct_code: 2.5,
        candidate: 16.0,
        linear_code: 1.3,
        min_table_entries: 256,
    };

    /// A model under which linear scans never pay off: every segment of 16 or more entries
    /// builds tables and every query probes them. For tests, which must exercise the tables
    /// on small banks.
    pub(crate) const ALWAYS_PROBE: CostModel = CostModel {
        linear_code: f64::INFINITY,
        min_table_entries: 16,
        ..CostModel::MEASURED
    };
}

/// One indirect table: a run of code bits `[start, start + prefix_bits + suffix_bits)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TableSpec {
    /// Lowest bit of the table's key (bit 0 is the least significant bit of the code).
    pub start: u32,
    /// Top bits of the key that address the directory.
    pub prefix_bits: u32,
    /// Low bits of the key stored beside each slot.
    pub suffix_bits: u32,
}

impl TableSpec {
    pub(crate) fn key_bits(&self) -> u32 {
        self.prefix_bits + self.suffix_bits
    }
}

/// The tables of one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Width of the direct table over the top bits of the code; 0 means no tables at all
    /// (the segment is always scanned linearly).
    pub direct_bits: u32,
    /// Indirect tables, covering disjoint bits below the direct table's.
    pub tables: Vec<TableSpec>,
    /// Bits of an indirect entry that hold the slot; the remaining `32 - slot_bits` may hold
    /// the suffix.
    pub slot_bits: u32,
}

impl Layout {
    /// The layout of a segment that builds no tables.
    pub(crate) fn linear() -> Layout {
        Layout {
            direct_bits: 0,
            tables: Vec::new(),
            slot_bits: 0,
        }
    }

    pub(crate) fn is_linear(&self) -> bool {
        self.direct_bits == 0
    }

    /// Bytes of tables and directories for `n` codes.
    pub(crate) fn table_bytes(&self, n: usize) -> f64 {
        if self.is_linear() {
            return 0.0;
        }
        let dir = |bits: u32| 4.0 * ((1u64 << bits) as f64 + 1.0);
        dir(self.direct_bits)
            + self
                .tables
                .iter()
                .map(|t| dir(t.prefix_bits) + 4.0 * n as f64)
                .sum::<f64>()
    }

    /// Builds the layout with `tables` tables in all (the direct one included), a direct table
    /// of `direct_bits` bits and indirect directories of `prefix_bits` bits, for segments whose
    /// slots need `slot_bits` bits.
    pub(crate) fn shaped(
        tables: u32,
        direct_bits: u32,
        prefix_bits: u32,
        slot_bits: u32,
    ) -> Layout {
        assert!(tables >= 1 && (1..CODE_BITS).contains(&direct_bits));
        let indirect = tables - 1;
        let below = CODE_BITS - direct_bits;
        let max_suffix = 32 - slot_bits;
        let mut specs = Vec::with_capacity(indirect as usize);
        if let Some(base) = below.checked_div(indirect) {
            let extra = below % indirect;
            let mut hi = below;
            for i in 0..indirect {
                let width = base + u32::from(i < extra);
                let prefix = prefix_bits.min(width);
                let suffix = (width - prefix).min(max_suffix);
                specs.push(TableSpec {
                    start: hi - prefix - suffix,
                    prefix_bits: prefix,
                    suffix_bits: suffix,
                });
                hi -= width;
            }
        }
        Layout {
            direct_bits,
            tables: specs,
            slot_bits,
        }
    }
}

/// Bits needed to number `n` slots (at least 1).
pub(crate) fn slot_bits_for(n: usize) -> u32 {
    (usize::BITS - n.saturating_sub(1).leading_zeros()).max(1)
}

/// Chooses the cheapest layout for `n` codes at the default radius within the memory budget.
pub(crate) fn choose_layout(n: usize, model: &CostModel) -> Layout {
    if n < model.min_table_entries {
        return Layout::linear();
    }
    let slot_bits = slot_bits_for(n);
    let log_n = slot_bits;
    // Directories much wider than log2(n) are mostly empty cells; much narrower ones make
    // buckets long. The search stays within a window around log2(n).
    let lo = log_n.saturating_sub(10).max(1);
    let hi = (log_n + 4).min(MAX_DIRECTORY_BITS);
    let mut best: Option<(f64, f64, Layout)> = None;
    for tables in 1..=MAX_TABLES {
        for direct_bits in lo..=hi {
            for prefix_bits in lo..=hi {
                if tables == 1 && prefix_bits > lo {
                    break; // no indirect table: the prefix width is irrelevant
                }
                let layout = Layout::shaped(tables, direct_bits, prefix_bits, slot_bits);
                let bytes = layout.table_bytes(n);
                if bytes / n as f64 > TABLE_BYTES_PER_CODE {
                    continue;
                }
                let cost = match plan_query(&layout, n, DEFAULT_RADIUS, model) {
                    QueryPlan::Linear => linear_cost(n, model),
                    QueryPlan::Probe(p) => p.cost,
                };
                let better = match &best {
                    None => true,
                    Some((c, b, _)) => cost < *c * 0.999 || (cost <= *c * 1.001 && bytes < *b),
                };
                if better {
                    best = Some((cost, bytes, layout));
                }
            }
        }
    }
    match best {
        Some((cost, _, layout))
            if cost < linear_cost(n, model) || model.linear_code.is_infinite() =>
        {
            layout
        }
        _ => Layout::linear(),
    }
}

/// Per-table radii for one query radius.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProbePlan {
    /// Radius for the direct table, or -1 to skip it.
    pub direct: i32,
    /// Radius per indirect table, or -1 to skip it.
    pub tables: Vec<i32>,
    /// Estimated cost in nanoseconds.
    pub cost: f64,
}

/// How a segment answers a query of a given radius.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum QueryPlan {
    /// Scan every code: cheaper than probing (small segment or large radius), or no tables.
    Linear,
    /// Probe the tables with these radii.
    Probe(ProbePlan),
}

pub(crate) fn linear_cost(n: usize, model: &CostModel) -> f64 {
    n as f64 * model.linear_code
}

/// Number of `bits`-bit keys within distance `t` of a given key: Σ_{f ≤ t} C(bits, f).
pub(crate) fn ball(bits: u32, t: i32) -> f64 {
    if t < 0 {
        return 0.0;
    }
    let mut sum = 0.0;
    let mut c = 1.0; // C(bits, f)
    for f in 0..=(t as u32).min(bits) {
        sum += c;
        c = c * f64::from(bits - f) / f64::from(f + 1);
    }
    sum
}

fn direct_cost(bits: u32, n: usize, t: i32, model: &CostModel) -> f64 {
    if t < 0 {
        return 0.0;
    }
    let probes = ball(bits, t);
    probes * model.probe + probes * n as f64 / 2f64.powi(bits as i32) * model.direct_code
}

fn indirect_cost(spec: &TableSpec, n: usize, t: i32, model: &CostModel) -> f64 {
    if t < 0 {
        return 0.0;
    }
    let probes = ball(spec.prefix_bits, t);
    let entries = probes * n as f64 / 2f64.powi(spec.prefix_bits as i32);
    let key = spec.key_bits();
    let candidates = n as f64 * ball(key, t) / 2f64.powi(key as i32);
    probes * model.probe + entries * model.entry + candidates * model.candidate
}

/// Chooses per-table radii for `radius` that minimise the estimated cost, or a linear scan.
///
/// Any radii with `Σ (t_i + 1) ≥ radius + 1` are exact (see the module documentation). Costs
/// grow convexly in `t` over the useful range, so raising, one unit at a time, the table whose
/// cost grows least finds the cheapest assignment.
pub(crate) fn plan_query(layout: &Layout, n: usize, radius: u32, model: &CostModel) -> QueryPlan {
    if layout.is_linear() {
        return QueryPlan::Linear;
    }
    let m = layout.tables.len() + 1;
    let cost_of = |i: usize, t: i32| -> f64 {
        if i == 0 {
            direct_cost(layout.direct_bits, n, t, model)
        } else {
            indirect_cost(&layout.tables[i - 1], n, t, model)
        }
    };
    // A table radius beyond its key width adds cost without adding coverage.
    let cap = |i: usize| -> i32 {
        if i == 0 {
            layout.direct_bits as i32
        } else {
            layout.tables[i - 1].key_bits() as i32
        }
    };
    let mut t = vec![-1i32; m];
    let mut cost = vec![0.0f64; m];
    for _ in 0..=radius {
        let mut pick: Option<(usize, f64)> = None;
        for i in 0..m {
            if t[i] >= cap(i) {
                continue;
            }
            let delta = cost_of(i, t[i] + 1) - cost[i];
            if pick.is_none_or(|(_, d)| delta < d) {
                pick = Some((i, delta));
            }
        }
        let Some((i, _)) = pick else {
            // Every table is at its cap: the tables cannot cover this radius.
            return QueryPlan::Linear;
        };
        t[i] += 1;
        cost[i] = cost_of(i, t[i]);
    }
    let total: f64 = cost.iter().sum();
    if total >= linear_cost(n, model) && model.linear_code.is_finite() {
        return QueryPlan::Linear;
    }
    QueryPlan::Probe(ProbePlan {
        direct: t[0],
        tables: t[1..].to_vec(),
        cost: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ball_counts_keys() {
        assert_eq!(ball(16, -1), 0.0);
        assert_eq!(ball(16, 0), 1.0);
        assert_eq!(ball(16, 1), 17.0);
        assert_eq!(ball(21, 2), 1.0 + 21.0 + 210.0);
        assert_eq!(ball(3, 10), 8.0);
    }

    #[test]
    fn slot_bits() {
        assert_eq!(slot_bits_for(1), 1);
        assert_eq!(slot_bits_for(2), 1);
        assert_eq!(slot_bits_for(3), 2);
        assert_eq!(slot_bits_for(1 << 20), 20);
        assert_eq!(slot_bits_for((1 << 20) + 1), 21);
    }

    #[test]
    fn shaped_tables_are_disjoint_and_below_the_direct_bits() {
        for tables in 1..=MAX_TABLES {
            for direct in [8, 20, 23] {
                let l = Layout::shaped(tables, direct, 19, 24);
                let mut used = [false; CODE_BITS as usize];
                for b in CODE_BITS - direct..CODE_BITS {
                    used[b as usize] = true;
                }
                for t in &l.tables {
                    assert!(t.suffix_bits <= 8);
                    for b in t.start..t.start + t.key_bits() {
                        assert!(!used[b as usize], "bit {b} used twice in {l:?}");
                        used[b as usize] = true;
                    }
                }
            }
        }
    }

    #[test]
    fn plans_satisfy_the_pigeonhole_bound() {
        let model = CostModel::MEASURED;
        for n in [300usize, 5_000, 1 << 20, 10_000_000, 100_000_000] {
            let layout = choose_layout(n, &model);
            assert!(layout.table_bytes(n) / n as f64 <= TABLE_BYTES_PER_CODE);
            for r in 0..=MAX_RADIUS {
                if let QueryPlan::Probe(p) = plan_query(&layout, n, r, &model) {
                    let covered: i32 = p.tables.iter().map(|t| t + 1).sum::<i32>() + p.direct + 1;
                    assert!(covered > r as i32, "n={n} r={r}: {p:?}");
                }
            }
        }
    }

    #[test]
    fn large_banks_get_tables_and_tiny_ones_do_not() {
        let model = CostModel::MEASURED;
        assert!(choose_layout(100, &model).is_linear());
        let l = choose_layout(10_000_000, &model);
        assert!(!l.is_linear() && l.tables.len() >= 4, "{l:?}");
        assert!(matches!(
            plan_query(&l, 10_000_000, 31, &model),
            QueryPlan::Probe(_)
        ));
    }
}
