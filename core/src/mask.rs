//! Payload masking (RFC 6455 §5.3), in safe code: short buffers are XORed
//! eight bytes at a time with the key widened to a `u64`; long ones block by
//! block with the key widened to a 64-byte block, which the compiler
//! vectorises.

const BLOCK: usize = 64;

/// XOR `buf` with the 4-byte `mask`, as if `buf` started at payload offset 0.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    apply_mask_at(buf, mask, 0);
}

/// XOR `buf` with `mask`, where `buf` starts at payload offset `offset`
/// (for payloads that arrive in pieces).
pub(crate) fn apply_mask_at(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    // The key as it lines up with `buf[0]`, repeated over eight bytes.
    let mut key = mask;
    key.rotate_left(offset & 3);
    let [a, b, c, d] = key;
    let word = [a, b, c, d, a, b, c, d];
    if buf.len() < BLOCK {
        return xor_words(buf, word);
    }
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
    xor_words(blocks.into_remainder(), word);
}

/// XOR `buf` (starting at key phase 0) with `word`, eight bytes at a time.
fn xor_words(buf: &mut [u8], word: [u8; 8]) {
    let key = u64::from_ne_bytes(word);
    let mut words = buf.chunks_exact_mut(8);
    for part in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(part);
        part.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ key).to_ne_bytes());
    }
    // Eight is a multiple of 4: the rest starts at key phase 0 too.
    for (byte, key) in words.into_remainder().iter_mut().zip(word) {
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
