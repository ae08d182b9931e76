//! Payload masking (RFC 6455 §5.3), in safe code that the compiler
//! vectorises: the key is widened to a 64-byte block and XORed block by block.

const BLOCK: usize = 64;

/// XOR `buf` with the 4-byte `mask`, as if `buf` started at payload offset 0.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    apply_mask_at(buf, mask, 0);
}

/// XOR `buf` with `mask`, where `buf` starts at payload offset `offset`
/// (for payloads that arrive in pieces).
pub(crate) fn apply_mask_at(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut wide = [0u8; BLOCK];
    for (i, byte) in wide.iter_mut().enumerate() {
        *byte = mask[(i + offset) & 3];
    }
    let mut blocks = buf.chunks_exact_mut(BLOCK);
    for block in &mut blocks {
        for (byte, key) in block.iter_mut().zip(&wide) {
            *byte ^= key;
        }
    }
    // BLOCK is a multiple of 4, so the tail starts at the same key phase.
    for (byte, key) in blocks.into_remainder().iter_mut().zip(&wide) {
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
