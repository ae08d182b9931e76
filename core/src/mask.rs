//! Payload masking (RFC 6455 §5.3), in safe code: short buffers are XORed
//! eight bytes at a time with the key widened to a `u64`; long ones block by
//! block with the key widened to a 64-byte block, which the compiler
//! vectorises.

const BLOCK: usize = 64;

/// XOR `buf` with the 4-byte `mask`, as if `buf` started at payload offset 0.
#[cfg(any(test, feature = "internals"))]
#[cfg_attr(not(feature = "internals"), allow(unreachable_pub))]
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    apply_mask_at(buf, mask, 0);
}

/// XOR `buf` with `mask`, where `buf` starts at payload offset `offset`
/// (for payloads that arrive in pieces).
pub(crate) fn apply_mask_at(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    // The key as it lines up with `buf[0]` (rotated by the offset's phase),
    // as a little-endian word: byte order in memory is what matters.
    let key = u32::from_le_bytes(mask).rotate_right(8 * (offset & 3) as u32);
    if buf.len() < BLOCK {
        return xor_words(buf, key);
    }
    let word = (u64::from(key) | u64::from(key) << 32).to_le_bytes();
    let mut wide = [0u8; BLOCK];
    for part in wide.chunks_exact_mut(8) {
        part.copy_from_slice(&word);
    }
    let mut blocks = buf.chunks_exact_mut(BLOCK);
    for block in &mut blocks {
        for (byte, key) in block.iter_mut().zip(&wide) {
            *byte ^= key;
        }
    }
    // BLOCK is a multiple of 4, so the rest starts at the same key phase.
    xor_words(blocks.into_remainder(), key);
}

/// XOR `buf` with `key` (a little-endian word lined up with `buf[0]`),
/// eight, then four, then one byte at a time.
fn xor_words(buf: &mut [u8], key: u32) {
    let wide = u64::from(key) | u64::from(key) << 32;
    let mut words = buf.chunks_exact_mut(8);
    for part in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(part);
        part.copy_from_slice(&(u64::from_le_bytes(bytes) ^ wide).to_le_bytes());
    }
    // Eight and four are multiples of 4: each rest starts at key phase 0.
    let mut rest = words.into_remainder();
    if rest.len() >= 4 {
        let (part, tail) = rest.split_at_mut(4);
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(part);
        part.copy_from_slice(&(u32::from_le_bytes(bytes) ^ key).to_le_bytes());
        rest = tail;
    }
    for (byte, key) in rest.iter_mut().zip(key.to_le_bytes()) {
        *byte ^= key;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(buf: &mut [u8], mask: [u8; 4], offset: usize) {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte ^= mask[(i + offset) % 4];
        }
    }

    #[test]
    fn rfc_5_7_example() {
        // "Hello" masked with 37 fa 21 3d (RFC 6455 §5.7).
        let mut data = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(&data, b"Hello");
    }

    proptest! {
        #[test]
        fn matches_byte_loop(data in proptest::collection::vec(any::<u8>(), 0..300),
                             mask in any::<[u8; 4]>(), offset in 0usize..8) {
            let mut fast = data.clone();
            let mut slow = data.clone();
            apply_mask_at(&mut fast, mask, offset);
            naive(&mut slow, mask, offset);
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn pieces_equal_whole(data in proptest::collection::vec(any::<u8>(), 0..300),
                              mask in any::<[u8; 4]>(), split in 0usize..300) {
            let split = split.min(data.len());
            let mut whole = data.clone();
            apply_mask(&mut whole, mask);
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask_at(a, mask, 0);
            apply_mask_at(b, mask, split);
            prop_assert_eq!(whole, pieces);
        }
    }
}
