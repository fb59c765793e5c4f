//! Jarosz (two-pass box filter) downsampling to 64×64, bit-exact with the reference.
//!
//! The reference runs, twice, a 1-D running-sum box filter along every row and then along every
//! column, over the full-resolution luma, and then decimates at pixel centres. Every output bit
//! of PDQ can hinge on the rounding of those running sums, so each lane here performs exactly
//! the reference's sequence of f32 adds, subtracts and divides. Speed comes only from choosing
//! which independent lanes run side by side, and from not computing what decimation throws away:
//!
//! * column passes process all columns of a row at once (contiguous, vectorisable);
//! * row passes run [`ROW_LANES`] rows side by side on a transposed strip, one vector per column;
//! * all four passes stream over blocks of rows, so no full-size float buffer is written;
//! * the second row pass divides only at the 64 columns that decimation will keep, and the second
//!   column pass runs only over those 64 columns.

use crate::luma::{luma_of, LumaMode};
use crate::transpose::transpose8;

/// Output side of the PDQ downsample.
pub(crate) const OUT: usize = 64;

/// Rows processed side by side in a row pass. Each row's running sum is a serial chain of
/// dependent adds; interleaving independent rows hides that latency.
const ROW_LANES: usize = 8;
// The transposes work on 8×8 blocks.
const _: () = assert!(ROW_LANES == 8);

/// Window size of the box filter, from the reference: `(old + 2*new - 1) / (2*new)`.
pub(crate) fn window_size(old: usize, new: usize) -> usize {
    old.div_ceil(2 * new)
}

/// The four phases of the reference's 1-D box filter, for a vector of `len` with window `w`.
#[derive(Clone, Copy, Debug)]
struct Phases {
    /// Adds before the first output (`half - 1`).
    p1: usize,
    /// Outputs while the window grows (`w - half + 1`).
    p2: usize,
    /// Outputs with a full window (`len - w`).
    p3: usize,
    /// Outputs while the window shrinks (`half - 1`).
    p4: usize,
}

impl Phases {
    fn new(len: usize, w: usize) -> Phases {
        let half = (w + 2) / 2;
        debug_assert!(w >= 1 && w <= len);
        Phases {
            p1: half - 1,
            p2: w - half + 1,
            p3: len - w,
            p4: half - 1,
        }
    }
}

#[cfg(test)]
/// The reference 1-D box filter over `invec[0], invec[stride], ...` (a literal port, kept as
/// the oracle the fast passes are tested against).
pub(crate) fn box_1d_reference(
    input: &[f32],
    output: &mut [f32],
    len: usize,
    stride: usize,
    w: usize,
) {
    let ph = Phases::new(len, w);
    let (mut li, mut ri, mut oi) = (0usize, 0usize, 0usize);
    let mut sum = 0.0f32;
    let mut count = 0i32;
    for _ in 0..ph.p1 {
        sum += input[ri];
        count += 1;
        ri += stride;
    }
    for _ in 0..ph.p2 {
        sum += input[ri];
        count += 1;
        output[oi] = sum / count as f32;
        ri += stride;
        oi += stride;
    }
    for _ in 0..ph.p3 {
        sum += input[ri];
        sum -= input[li];
        output[oi] = sum / count as f32;
        li += stride;
        ri += stride;
        oi += stride;
    }
    for _ in 0..ph.p4 {
        sum -= input[li];
        count -= 1;
        output[oi] = sum / count as f32;
        li += stride;
        oi += stride;
    }
}

#[cfg(test)]
/// The reference Jarosz filter (literal port): `reps` times rows then columns, result in `buf1`.
pub(crate) fn jarosz_reference(
    buf1: &mut [f32],
    buf2: &mut [f32],
    rows: usize,
    cols: usize,
    w_rows: usize,
    w_cols: usize,
    reps: usize,
) {
    for _ in 0..reps {
        for i in 0..rows {
            box_1d_reference(
                &buf1[i * cols..(i + 1) * cols],
                &mut buf2[i * cols..(i + 1) * cols],
                cols,
                1,
                w_rows,
            );
        }
        for j in 0..cols {
            box_1d_reference(&buf2[j..], &mut buf1[j..], rows, cols, w_cols);
        }
    }
}

/// Source index of decimated output `o` out of `n` outputs over an input of `len`, computed
/// in f64 and truncated, as the reference does.
pub(crate) fn decimate_index(o: usize, len: usize, n: usize) -> usize {
    (((o as f64 + 0.5) * len as f64) / n as f64) as usize
}

#[cfg(test)]
/// The reference decimation of a full-size buffer to 64×64.
pub(crate) fn decimate_reference(input: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    for oi in 0..OUT {
        let ii = decimate_index(oi, rows, OUT);
        for oj in 0..OUT {
            let ij = decimate_index(oj, cols, OUT);
            out[oi * OUT + oj] = input[ii * cols + ij];
        }
    }
}

/// Where the luma of a row block comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    /// Interleaved RGB8 with the given luma precision.
    Rgb(&'a [u8], LumaMode),
    /// 8-bit grey (`Y = v`).
    Grey(&'a [u8]),
    /// Ready-made luma.
    Luma(&'a [f32]),
}

impl Source<'_> {
    /// Writes the luma of rows `r0..r0 + n` into `strip`, transposed: `strip[x * LANES + l]` is
    /// row `r0 + l`, column `x`. Lanes `n..LANES` are zero-filled (computed on, then discarded).
    /// The per-pixel work runs along contiguous rows (into `rows_buf`, LANES × cols) so it
    /// vectorises; the transpose is a separate blocked copy.
    #[inline(always)]
    fn fill_strip(
        &self,
        r0: usize,
        n: usize,
        cols: usize,
        strip: &mut [f32],
        rows_buf: &mut [f32],
    ) {
        for l in 0..ROW_LANES {
            let dst = &mut rows_buf[l * cols..(l + 1) * cols];
            if l >= n {
                dst.fill(0.0);
                continue;
            }
            let r = r0 + l;
            match *self {
                Source::Rgb(rgb, mode) => {
                    let px = &rgb[r * cols * 3..(r + 1) * cols * 3];
                    match mode {
                        // Separate loops per mode so each is a straight-line, vectorisable body.
                        LumaMode::F64 => {
                            for (d, p) in dst.iter_mut().zip(px.chunks_exact(3)) {
                                *d = luma_of(p[0], p[1], p[2], LumaMode::F64);
                            }
                        }
                        LumaMode::F32 => {
                            for (d, p) in dst.iter_mut().zip(px.chunks_exact(3)) {
                                *d = luma_of(p[0], p[1], p[2], LumaMode::F32);
                            }
                        }
                    }
                }
                Source::Grey(g) => {
                    for (d, &v) in dst.iter_mut().zip(&g[r * cols..(r + 1) * cols]) {
                        *d = v as f32;
                    }
                }
                Source::Luma(y) => dst.copy_from_slice(&y[r * cols..(r + 1) * cols]),
            }
        }
        rows_to_strip(rows_buf, cols, strip);
    }
}

/// Transposes LANES row-major rows (`rows`, LANES × cols) into a strip (cols × LANES), in
/// LANES × LANES blocks that stay in registers.
#[inline(always)]
fn rows_to_strip(rows: &[f32], cols: usize, strip: &mut [f32]) {
    let full = cols / ROW_LANES * ROW_LANES;
    for xb in (0..full).step_by(ROW_LANES) {
        let src: [&[f32; ROW_LANES]; ROW_LANES] = std::array::from_fn(|l| {
            let start = l * cols + xb;
            rows[start..start + ROW_LANES]
                .try_into()
                .expect("LANES-wide slice")
        });
        let mut dst = strip[xb * ROW_LANES..(xb + ROW_LANES) * ROW_LANES]
            .chunks_exact_mut(ROW_LANES)
            .map(|c| <&mut [f32; ROW_LANES]>::try_from(c).expect("LANES-wide chunk"));
        transpose8(
            src,
            std::array::from_fn(|_| dst.next().expect("LANES chunks")),
        );
    }
    for x in full..cols {
        for l in 0..ROW_LANES {
            strip[x * ROW_LANES + l] = rows[l * cols + x];
        }
    }
}

/// Scratch buffers reused across images so hashing a stream of files allocates once. None of
/// them is full-size: the pipeline streams blocks of rows through all four passes.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Luma of the current row block, transposed (cols × LANES).
    strip: Vec<f32>,
    /// LANES rows of luma, row-major (LANES × cols).
    rows_buf: Vec<f32>,
    /// First row pass output of the current block, transposed (cols × LANES).
    strip_out: Vec<f32>,
    /// Ring of first-row-pass rows awaiting the first column pass (ring × cols, row-major).
    ring: Vec<f32>,
    /// Running sums of the first column pass (cols).
    sums: Vec<f32>,
    /// First column pass output rows of the current block, row-major (LANES × cols).
    block: Vec<f32>,
    /// The same block transposed for the second row pass (cols × LANES).
    block_t: Vec<f32>,
    /// rows × 64: the second row pass evaluated at the kept columns only.
    narrow: Vec<f32>,
    /// Running sums of the second column pass (64).
    narrow_sums: Vec<f32>,
}

/// State of the first column pass, which consumes rows as the first row pass produces them.
#[derive(Debug)]
struct ColPass {
    ph: Phases,
    w: f32,
    /// Steps done so far (each step adds and/or subtracts one row and maybe writes one row).
    step: usize,
    ri: usize,
    li: usize,
    oi: usize,
    count: u32,
}

impl ColPass {
    fn new(rows: usize, w: usize) -> ColPass {
        ColPass {
            ph: Phases::new(rows, w),
            w: w as f32,
            step: 0,
            ri: 0,
            li: 0,
            oi: 0,
            count: 0,
        }
    }

    fn total_steps(&self) -> usize {
        self.ph.p1 + self.ph.p2 + self.ph.p3 + self.ph.p4
    }

    /// Whether the next step needs row `ri` from the row pass.
    fn next_needs_row(&self) -> bool {
        self.step < self.ph.p1 + self.ph.p2 + self.ph.p3
    }
}

/// Fast, bit-exact equivalent of `jarosz_reference(.., reps = 2)` followed by
/// `decimate_reference`, streaming blocks of rows through all four passes so that no full-size
/// float buffer is ever written. The 64×64 result goes to `out`.
pub(crate) fn downsample_64(
    src: Source<'_>,
    scratch: &mut Scratch,
    rows: usize,
    cols: usize,
    out: &mut [f32; OUT * OUT],
) {
    downsample_64_dispatch(src, scratch, rows, cols, out)
}

// The kernels are written so that every lane is an independent chain in the reference's order;
// compiling them for wider vectors changes speed, never results (Rust never contracts a*b+c
// into a fused multiply-add).
#[multiversion::multiversion(targets("x86_64+avx2+avx", "x86_64+sse4.1"))]
fn downsample_64_dispatch<'a>(
    src: Source<'a>,
    scratch: &mut Scratch,
    rows: usize,
    cols: usize,
    out: &mut [f32; OUT * OUT],
) {
    let w_rows = window_size(cols, OUT);
    let w_cols = window_size(rows, OUT);
    let ring_rows = w_cols + ROW_LANES + 1;
    let s = scratch;
    s.strip.resize(cols * ROW_LANES, 0.0);
    s.rows_buf.resize(ROW_LANES * cols, 0.0);
    s.strip_out.resize(cols * ROW_LANES, 0.0);
    s.ring.resize(ring_rows * cols, 0.0);
    s.sums.clear();
    s.sums.resize(cols, 0.0);
    s.block.resize(ROW_LANES * cols, 0.0);
    s.block_t.resize(cols * ROW_LANES, 0.0);
    s.narrow.resize(rows * OUT, 0.0);

    let keep_cols: [usize; OUT] = std::array::from_fn(|o| decimate_index(o, cols, OUT));
    let keep_rows: [usize; OUT] = std::array::from_fn(|o| decimate_index(o, rows, OUT));
    let row_plan = RowPlan::new(cols, w_rows, &keep_cols);

    let mut cp = ColPass::new(rows, w_cols);
    let mut produced = 0; // rows of first-row-pass output in the ring
    let mut block_rows = 0; // rows in `block` awaiting the second row pass
    let mut narrow_rows = 0; // rows of `narrow` written

    while cp.step < cp.total_steps() {
        // Produce the next block of first-row-pass rows when the column pass needs one.
        if cp.next_needs_row() && cp.ri >= produced {
            let n = ROW_LANES.min(rows - produced);
            src.fill_strip(produced, n, cols, &mut s.strip, &mut s.rows_buf);
            box_rows_strip(&s.strip, &mut s.strip_out, cols, w_rows);
            let offs: [usize; ROW_LANES] =
                std::array::from_fn(|l| ((produced + l) % ring_rows) * cols);
            strip_to_ring(&s.strip_out, cols, &mut s.ring, &offs[..n]);
            produced += n;
        }
        // One column-pass step.
        let wrote = col_step(
            &mut cp,
            &s.ring,
            ring_rows,
            cols,
            &mut s.sums,
            &mut s.block[block_rows * cols..(block_rows + 1) * cols],
        );
        if wrote {
            block_rows += 1;
            if block_rows == ROW_LANES || cp.oi == rows {
                s.block[block_rows * cols..].fill(0.0);
                rows_to_strip(&s.block, cols, &mut s.block_t);
                box_rows_strip_at(
                    &s.block_t,
                    &row_plan,
                    &mut s.narrow[narrow_rows * OUT..],
                    block_rows,
                );
                narrow_rows += block_rows;
                block_rows = 0;
            }
        }
    }
    debug_assert_eq!(narrow_rows, rows);
    box_cols_at(&s.narrow, rows, w_cols, &keep_rows, &mut s.narrow_sums, out);
}

/// Transposes a strip (cols × LANES) back into rows of the ring starting at `offs[l]`.
#[inline(always)]
fn strip_to_ring(strip: &[f32], cols: usize, ring: &mut [f32], offs: &[usize]) {
    let full = cols / ROW_LANES * ROW_LANES;
    let mut t = [[0.0f32; ROW_LANES]; ROW_LANES];
    for xb in (0..full).step_by(ROW_LANES) {
        let src: [&[f32; ROW_LANES]; ROW_LANES] = std::array::from_fn(|x| {
            let start = (xb + x) * ROW_LANES;
            strip[start..start + ROW_LANES]
                .try_into()
                .expect("LANES-wide slice")
        });
        transpose8(src, t.each_mut());
        for (l, &off) in offs.iter().enumerate() {
            ring[off + xb..off + xb + ROW_LANES].copy_from_slice(&t[l]);
        }
    }
    for x in full..cols {
        for (l, &off) in offs.iter().enumerate() {
            ring[off + x] = strip[x * ROW_LANES + l];
        }
    }
}

/// One step of the first column pass; returns whether it wrote an output row into `out`.
#[inline(always)]
fn col_step(
    cp: &mut ColPass,
    ring: &[f32],
    ring_rows: usize,
    cols: usize,
    sums: &mut [f32],
    out: &mut [f32],
) -> bool {
    let row = |i: usize| &ring[(i % ring_rows) * cols..(i % ring_rows + 1) * cols];
    let ph = cp.ph;
    let t = cp.step;
    cp.step += 1;
    if t < ph.p1 {
        for (s, &v) in sums.iter_mut().zip(row(cp.ri)) {
            *s += v;
        }
        cp.ri += 1;
        cp.count += 1;
        false
    } else if t < ph.p1 + ph.p2 {
        cp.count += 1;
        let c = cp.count as f32;
        for ((s, &v), o) in sums.iter_mut().zip(row(cp.ri)).zip(out.iter_mut()) {
            *s += v;
            *o = *s / c;
        }
        cp.ri += 1;
        cp.oi += 1;
        true
    } else if t < ph.p1 + ph.p2 + ph.p3 {
        let w = cp.w;
        for (((s, &a), &b), o) in sums
            .iter_mut()
            .zip(row(cp.ri))
            .zip(row(cp.li))
            .zip(out.iter_mut())
        {
            *s += a;
            *s -= b;
            *o = *s / w;
        }
        cp.ri += 1;
        cp.li += 1;
        cp.oi += 1;
        true
    } else {
        cp.count -= 1;
        let c = cp.count as f32;
        for ((s, &b), o) in sums.iter_mut().zip(row(cp.li)).zip(out.iter_mut()) {
            *s -= b;
            *o = *s / c;
        }
        cp.li += 1;
        cp.oi += 1;
        true
    }
}

/// First row pass over a transposed strip: every lane is one row, every step one column.
#[inline(always)]
fn box_rows_strip(strip: &[f32], out: &mut [f32], cols: usize, w: usize) {
    let ph = Phases::new(cols, w);
    let full = w as f32;
    let v = |x: usize| -> &[f32; ROW_LANES] {
        // The strip is cols × LANES, so this slice is exactly LANES long.
        strip[x * ROW_LANES..(x + 1) * ROW_LANES]
            .try_into()
            .expect("LANES-wide slice")
    };
    let mut sum = [0.0f32; ROW_LANES];
    let (mut li, mut ri, mut oi) = (0usize, 0usize, 0usize);
    for _ in 0..ph.p1 {
        let a = v(ri);
        for l in 0..ROW_LANES {
            sum[l] += a[l];
        }
        ri += 1;
    }
    let mut count = ph.p1 as u32;
    for _ in 0..ph.p2 {
        count += 1;
        let c = count as f32;
        let a = v(ri);
        let o = &mut out[oi * ROW_LANES..(oi + 1) * ROW_LANES];
        for l in 0..ROW_LANES {
            sum[l] += a[l];
            o[l] = sum[l] / c;
        }
        ri += 1;
        oi += 1;
    }
    for _ in 0..ph.p3 {
        let a = v(ri);
        let b = v(li);
        let o = &mut out[oi * ROW_LANES..(oi + 1) * ROW_LANES];
        for l in 0..ROW_LANES {
            sum[l] += a[l];
            sum[l] -= b[l];
            o[l] = sum[l] / full;
        }
        li += 1;
        ri += 1;
        oi += 1;
    }
    for _ in 0..ph.p4 {
        count -= 1;
        let c = count as f32;
        let b = v(li);
        let o = &mut out[oi * ROW_LANES..(oi + 1) * ROW_LANES];
        for l in 0..ROW_LANES {
            sum[l] -= b[l];
            o[l] = sum[l] / c;
        }
        li += 1;
        oi += 1;
    }
}

/// For the second row pass: how many adds and subtracts precede each kept output, and its
/// divisor, derived from the phase the kept column falls in.
#[derive(Debug)]
struct RowPlan {
    ph: Phases,
    /// (adds, subtracts, divisor) per kept column, in ascending column order.
    at: [(usize, usize, f32); OUT],
}

impl RowPlan {
    fn new(cols: usize, w: usize, keep: &[usize; OUT]) -> RowPlan {
        let ph = Phases::new(cols, w);
        let at = std::array::from_fn(|o| {
            let j = keep[o];
            if j < ph.p2 {
                (ph.p1 + j + 1, 0, (ph.p1 + j + 1) as f32)
            } else if j < ph.p2 + ph.p3 {
                let k = j - ph.p2 + 1;
                (ph.p1 + ph.p2 + k, k, w as f32)
            } else {
                let k = j - ph.p2 - ph.p3 + 1;
                (ph.p1 + ph.p2 + ph.p3, ph.p3 + k, (w - k) as f32)
            }
        });
        RowPlan { ph, at }
    }
}

/// Second row pass over a transposed block, dividing only at the kept columns. The running
/// sums still visit every element in the reference's order (phases 1–2 add; phase 3 adds then
/// subtracts; phase 4 subtracts). Writes `lanes` rows of 64 into `narrow`.
#[inline(always)]
fn box_rows_strip_at(block_t: &[f32], plan: &RowPlan, narrow: &mut [f32], lanes: usize) {
    let ph = plan.ph;
    let v = |x: usize| -> &[f32; ROW_LANES] {
        block_t[x * ROW_LANES..(x + 1) * ROW_LANES]
            .try_into()
            .expect("LANES-wide slice")
    };
    let mut sum = [0.0f32; ROW_LANES];
    let (mut ri, mut li) = (0usize, 0usize);
    for (o, &(adds, subs, div)) in plan.at.iter().enumerate() {
        let grow_end = adds.min(ph.p1 + ph.p2);
        while ri < grow_end {
            let a = v(ri);
            for l in 0..ROW_LANES {
                sum[l] += a[l];
            }
            ri += 1;
        }
        while ri < adds {
            let a = v(ri);
            let b = v(li);
            for l in 0..ROW_LANES {
                sum[l] += a[l];
                sum[l] -= b[l];
            }
            ri += 1;
            li += 1;
        }
        while li < subs {
            let b = v(li);
            for l in 0..ROW_LANES {
                sum[l] -= b[l];
            }
            li += 1;
        }
        for l in 0..lanes {
            narrow[l * OUT + o] = sum[l] / div;
        }
    }
}

/// Column pass over a rows × 64 buffer that writes only rows `keep` into the 64×64 output.
fn box_cols_at(
    input: &[f32],
    rows: usize,
    w: usize,
    keep: &[usize; OUT],
    sums: &mut Vec<f32>,
    out: &mut [f32; OUT * OUT],
) {
    let ph = Phases::new(rows, w);
    sums.clear();
    sums.resize(OUT, 0.0);
    let row = |i: usize| &input[i * OUT..(i + 1) * OUT];
    let mut next = 0; // next entry of `keep` to emit
    let mut emit = |oi: usize, sums: &[f32], div: f32, next: &mut usize| {
        while *next < OUT && keep[*next] == oi {
            for (d, &s) in out[*next * OUT..(*next + 1) * OUT].iter_mut().zip(sums) {
                *d = s / div;
            }
            *next += 1;
        }
    };
    let (mut li, mut ri, mut oi) = (0usize, 0usize, 0usize);
    for _ in 0..ph.p1 {
        for (s, &v) in sums.iter_mut().zip(row(ri)) {
            *s += v;
        }
        ri += 1;
    }
    let mut count = ph.p1 as u32;
    for _ in 0..ph.p2 {
        count += 1;
        for (s, &v) in sums.iter_mut().zip(row(ri)) {
            *s += v;
        }
        emit(oi, sums, count as f32, &mut next);
        ri += 1;
        oi += 1;
    }
    for _ in 0..ph.p3 {
        if next >= OUT {
            return;
        }
        for ((s, &a), &b) in sums.iter_mut().zip(row(ri)).zip(row(li)) {
            *s += a;
            *s -= b;
        }
        emit(oi, sums, w as f32, &mut next);
        li += 1;
        ri += 1;
        oi += 1;
    }
    for _ in 0..ph.p4 {
        if next >= OUT {
            return;
        }
        count -= 1;
        for (s, &b) in sums.iter_mut().zip(row(li)) {
            *s -= b;
        }
        emit(oi, sums, count as f32, &mut next);
        li += 1;
        oi += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random_image(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
        let mut x = seed | 1;
        (0..rows * cols)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Values like f64-derived luma: non-integers in 0..255.
                ((x % 255_000) as f64 / 1000.0 * 1.000_7) as f32
            })
            .collect()
    }

    fn check(rows: usize, cols: usize, seed: u64) {
        let img = pseudo_random_image(rows, cols, seed);
        let mut a = img.clone();
        let mut b = vec![0.0; rows * cols];
        jarosz_reference(
            &mut a,
            &mut b,
            rows,
            cols,
            window_size(cols, OUT),
            window_size(rows, OUT),
            2,
        );
        let mut expected = [0.0f32; OUT * OUT];
        decimate_reference(&a, rows, cols, &mut expected);

        let mut scratch = Scratch::default();
        let mut got = [0.0f32; OUT * OUT];
        downsample_64(Source::Luma(&img), &mut scratch, rows, cols, &mut got);
        for k in 0..OUT * OUT {
            assert_eq!(
                expected[k].to_bits(),
                got[k].to_bits(),
                "{rows}x{cols} differs at {k}: {} vs {}",
                expected[k],
                got[k]
            );
        }
    }

    #[test]
    fn fast_path_is_bit_identical_to_reference() {
        for &(r, c) in &[
            (5, 5),
            (7, 13),
            (64, 65),
            (65, 64),
            (127, 129),
            (128, 128),
            (129, 255),
            (256, 256),
            (300, 17),
            (17, 300),
            (333, 500),
            (1000, 10),
            (10, 1000),
            (513, 1031),
        ] {
            check(r, c, (r * 7919 + c) as u64);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn fast_path_matches_reference_on_random_sizes(
            rows in 5usize..400,
            cols in 5usize..400,
            seed in proptest::prelude::any::<u64>(),
        ) {
            check(rows, cols, seed);
        }
    }

    #[test]
    fn window_sizes_match_reference_formula() {
        assert_eq!(window_size(64, 64), 1);
        assert_eq!(window_size(128, 64), 1);
        assert_eq!(window_size(129, 64), 2);
        assert_eq!(window_size(4000, 64), 32);
        assert_eq!(window_size(5, 64), 1);
    }
}
