// SPDX-License-Identifier: GPL-2.0

//! verify writes to the buffer; the journal saves every range before it is
//! written and writes the saved bytes back at the end, so the buffer is left
//! as verify found it (verify runs several times per module load).

use anyhow::{Context, Result};

use crate::device::Device;

/// Byte-addressed storage the journal saves from and restores to.
pub trait Store {
    fn read_at(&self, offset: usize, len: usize) -> Result<Vec<u8>>;
    fn write_at(&self, offset: usize, data: &[u8]) -> Result<()>;
}

impl Store for Device {
    fn read_at(&self, offset: usize, len: usize) -> Result<Vec<u8>> {
        self.read_exact_at(offset, len)
    }

    fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.write_all_at(offset, data)
    }
}

#[derive(Debug, Default)]
pub struct Journal {
    saved: Vec<(usize, Vec<u8>)>,
}

impl Journal {
    /// Saves `len` bytes at `offset` before they are modified; returns them.
    pub fn save(&mut self, store: &impl Store, offset: usize, len: usize) -> Result<Vec<u8>> {
        let bytes = store
            .read_at(offset, len)
            .with_context(|| format!("cannot save {len} bytes at {offset} before changing them"))?;
        self.saved.push((offset, bytes.clone()));
        Ok(bytes)
    }

    /// Writes everything back, newest first (so the oldest copy of a range
    /// saved twice wins), and checks it reads back. Returns the bytes restored.
    pub fn restore(&mut self, store: &impl Store) -> Result<usize> {
        let mut bytes = 0;
        while let Some((offset, data)) = self.saved.pop() {
            store
                .write_at(offset, &data)
                .with_context(|| format!("restoring {} bytes at {offset}", data.len()))?;
            let back = store.read_at(offset, data.len())?;
            anyhow::ensure!(
                back == data,
                "{} bytes at {offset} read back differently after restoring them",
                data.len()
            );
            bytes += data.len();
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Mem(RefCell<Vec<u8>>);

    impl Store for Mem {
        fn read_at(&self, offset: usize, len: usize) -> Result<Vec<u8>> {
            Ok(self.0.borrow()[offset..offset + len].to_vec())
        }
        fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
            self.0.borrow_mut()[offset..offset + data.len()].copy_from_slice(data);
            Ok(())
        }
    }

    #[test]
    fn restore_undoes_overlapping_writes() {
        let original: Vec<u8> = (0..32).collect();
        let mem = Mem(RefCell::new(original.clone()));
        let mut j = Journal::default();
        assert_eq!(j.save(&mem, 4, 4).unwrap(), vec![4, 5, 6, 7]);
        mem.write_at(4, &[9; 4]).unwrap();
        j.save(&mem, 6, 4).unwrap();
        mem.write_at(6, &[8; 4]).unwrap();
        assert_eq!(j.restore(&mem).unwrap(), 8);
        assert_eq!(*mem.0.borrow(), original);
        assert_eq!(j.restore(&mem).unwrap(), 0);
    }
}
