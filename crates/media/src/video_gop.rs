//! Which packets of an H.264 stream a sampled vPDQ decode needs.
//!
//! At one hash a second, most frames are decoded only because later frames reference them.
//! A frame never references anything decoded before the last IDR picture that precedes it (an
//! IDR empties the decoder's reference buffers), so the stream splits into segments, each
//! starting at an IDR packet. Inside a segment, a selected frame needs at most the packets
//! decoded before it; the packets after the segment's last selected one (in decode order) feed
//! no selected frame and need not be decoded at all. A segment with no selected frame is
//! skipped whole.
//!
//! Only IDR pictures start segments. An I-frame that is a "sync sample" but not an IDR (open
//! GOPs, recovery points) does not empty the reference buffers, so it is treated as an ordinary
//! packet: the saving is lost there, never the exactness.

/// One packet of the video stream, in decode order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PacketInfo {
    /// Rank of its presentation timestamp among all the stream's packets: the frame number
    /// the reference would give the frame.
    pub rank: u64,
    /// Whether the packet holds an IDR picture.
    pub idr: bool,
}

/// For each packet (decode order), whether the decoder must see it so that every frame whose
/// rank is a multiple of `frame_mod` decodes exactly as in a full decode.
pub(crate) fn needed_packets(packets: &[PacketInfo], frame_mod: u64) -> Vec<bool> {
    let frame_mod = frame_mod.max(1);
    let mut needed = vec![false; packets.len()];
    let mut start = 0;
    while start < packets.len() {
        // The segment runs to the next IDR (exclusive) or the end.
        let end = packets[start + 1..]
            .iter()
            .position(|p| p.idr)
            .map_or(packets.len(), |k| start + 1 + k);
        if let Some(last) = (start..end)
            .rev()
            .find(|&i| packets[i].rank % frame_mod == 0)
        {
            for n in &mut needed[start..=last] {
                *n = true;
            }
        }
        start = end;
    }
    needed
}

/// Whether an H.264 packet holds an IDR slice (NAL unit type 5). Packets come either as
/// length-prefixed NAL units (MP4/MOV/Matroska, "AVCC", with `length_size` bytes of length:
/// 1, 2 or 4) or as an Annex B byte stream with start codes (MPEG-TS, raw `.h264`). Anything
/// that does not parse cleanly is "not IDR", which only costs the saving.
pub(crate) fn h264_packet_has_idr(data: &[u8], length_size: Option<usize>) -> bool {
    // The stream's configuration decides the framing, never the packet's first bytes: a
    // 4-byte NAL length of 256..=511 begins `00 00 01`, exactly like a start code.
    match length_size {
        Some(n @ (1 | 2 | 4)) => avcc_has_idr(data, n),
        Some(_) => false,
        None => annex_b_has_idr(data),
    }
}

fn is_idr(nal_header: u8) -> bool {
    nal_header & 0x1f == 5
}

fn avcc_has_idr(data: &[u8], length_size: usize) -> bool {
    let mut pos = 0;
    while pos + length_size <= data.len() {
        let len = data[pos..pos + length_size]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        pos += length_size;
        if len == 0 || pos + len > data.len() {
            return false;
        }
        if is_idr(data[pos]) {
            return true;
        }
        pos += len;
    }
    false
}

fn annex_b_has_idr(data: &[u8]) -> bool {
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if is_idr(data[i + 3]) {
                return true;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    false
}

/// The NAL length size an `avcC` configuration record (the stream's extradata) declares, or
/// `None` when the extradata is not one (Annex B streams have none).
pub(crate) fn avcc_length_size(extradata: &[u8]) -> Option<usize> {
    // configurationVersion = 1, then profile, compatibility, level, then 6 reserved bits and
    // lengthSizeMinusOne in the low two bits.
    if extradata.len() >= 5 && extradata[0] == 1 {
        Some((extradata[4] & 0x03) as usize + 1)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(rank: u64, idr: bool) -> PacketInfo {
        PacketInfo { rank, idr }
    }

    #[test]
    fn segment_tails_and_unselected_segments_are_skipped() {
        // Two GOPs of 6 frames, I P P P P P in display = decode order; frame_mod 4 selects
        // ranks 0, 4, 8.
        let packets: Vec<_> = (0..12).map(|r| p(r, r % 6 == 0)).collect();
        let need = needed_packets(&packets, 4);
        assert_eq!(
            need,
            vec![
                true, true, true, true, true, false, // 0..=4 needed, 5 is a tail
                true, true, true, false, false, false, // 6..=8 needed
            ]
        );
        // A segment with no selected frame is skipped whole.
        let need = needed_packets(&packets, 100);
        assert_eq!(need.iter().filter(|&&n| n).count(), 1); // only rank 0
    }

    #[test]
    fn b_frames_keep_their_references() {
        // Decode order I0 P3 B1 B2 P6 B4 B5, one segment; frame_mod 2 selects 0, 2, 4, 6.
        let packets = vec![
            p(0, true),
            p(3, false),
            p(1, false),
            p(2, false),
            p(6, false),
            p(4, false),
            p(5, false),
        ];
        // The last selected packet in decode order is B4 (index 5): everything before it.
        assert_eq!(
            needed_packets(&packets, 2),
            vec![true, true, true, true, true, true, false]
        );
    }

    #[test]
    fn without_idr_nothing_is_skipped_before_the_last_selected_frame() {
        // Non-IDR keyframes do not start segments.
        let packets: Vec<_> = (0..10).map(|r| p(r, r == 0)).collect();
        let need = needed_packets(&packets, 3);
        assert_eq!(need, vec![true; 10]);
        let need = needed_packets(&packets, 4);
        assert_eq!(need[..=8], vec![true; 9][..]);
        assert!(!need[9]);
        assert!(needed_packets(&[], 4).is_empty());
    }

    #[test]
    fn idr_detection() {
        // AVCC, 4-byte lengths: an SEI (6) then an IDR slice (0x65).
        let avcc = [0, 0, 0, 2, 0x06, 0xff, 0, 0, 0, 3, 0x65, 0x88, 0x80];
        assert!(h264_packet_has_idr(&avcc, Some(4)));
        // A non-IDR slice (0x41).
        let p_slice = [0, 0, 0, 3, 0x41, 0x9a, 0x00];
        assert!(!h264_packet_has_idr(&p_slice, Some(4)));
        // Lengths running past the end are "not IDR".
        assert!(!h264_packet_has_idr(&[0, 0, 0, 9, 0x65], Some(4)));
        // A length of 300 starts like a start code; with AVCC framing it is still a length.
        let mut long = vec![0, 0, 1, 0x2c, 0x41];
        long.extend(std::iter::repeat_n(0x65, 299));
        assert!(!h264_packet_has_idr(&long, Some(4)));
        // Annex B.
        let annexb = [0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x65, 0x88];
        assert!(h264_packet_has_idr(&annexb, None));
        assert!(!h264_packet_has_idr(&[0, 0, 1, 0x41, 0x9a], None));
        // No start code.
        assert!(!h264_packet_has_idr(&[0x65, 0x88], None));
        assert_eq!(avcc_length_size(&[1, 0x64, 0, 0x1f, 0xff, 0xe1]), Some(4));
        assert_eq!(avcc_length_size(&[0, 0, 0, 1]), None);
    }
}
