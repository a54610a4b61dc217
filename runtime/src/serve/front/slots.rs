//! Connection slots: at most `total` open connections, and at most
//! `per_address` from one client address, so one client holding connections
//! open (slowloris) cannot take the slots everyone else needs. A slot is
//! given back when its [`Slot`] drops.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot is taken.
    Full,
    /// This address holds its share already.
    Address,
}

impl Refused {
    pub fn message(self) -> &'static str {
        match self {
            Refused::Full => "too many open connections to this server; retry shortly",
            Refused::Address => "too many open connections from your address; retry shortly",
        }
    }
}

pub struct Slots {
    total: usize,
    per_address: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One taken slot.
pub struct Slot {
    slots: Arc<Slots>,
    address: IpAddr,
}

impl Slots {
    pub fn new(total: usize, per_address: usize) -> Arc<Slots> {
        Arc::new(Slots {
            total,
            per_address,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// Takes a slot for a connection from `address`, or says why not.
    pub fn take(self: &Arc<Self>, address: IpAddr) -> Result<Slot, Refused> {
        let address = address.to_canonical();
        let mut open = self.open.lock().expect("not poisoned");
        if open.0 >= self.total {
            return Err(Refused::Full);
        }
        let mine = open.1.entry(address).or_insert(0);
        if *mine >= self.per_address {
            return Err(Refused::Address);
        }
        *mine += 1;
        open.0 += 1;
        Ok(Slot {
            slots: self.clone(),
            address,
        })
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.open.lock().expect("not poisoned").0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("not poisoned");
        open.0 -= 1;
        if let Some(n) = open.1.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_in_total_and_per_address_and_gives_slots_back() {
        let slots = Slots::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let a_mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = slots.take(a).unwrap();
        let _a2 = slots.take(a_mapped).unwrap();
        assert_eq!(slots.take(a).err(), Some(Refused::Address));
        let _b1 = slots.take(b).unwrap();
        assert_eq!(slots.take(b).err(), Some(Refused::Full));
        drop(a1);
        assert_eq!(slots.open(), 2);
        let _a3 = slots.take(a).unwrap();
        assert_eq!(slots.take(a).err(), Some(Refused::Full));
    }
}
