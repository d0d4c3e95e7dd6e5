// SPDX-License-Identifier: GPL-2.0

//! The misc device `/dev/mapdrv`, registered together with the device state
//! that its files open.
//!
//! Linux 7.3's `MiscDeviceRegistration` carries no data for `open`, which is
//! handed only the registration. [`Registration`] keeps the registration and
//! the device side by side, and [`Registration::device_of`] goes from the one
//! to the other by the registration's address. This file is the one place
//! that does so.
//!
//! # Invariants
//!
//! A `MiscDeviceRegistration<Mapdrv>` exists only as the `misc` field of a
//! [`Registration`]: [`Registration::new`] is the only code that registers
//! one.

use kernel::{
    miscdevice::{MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    sync::Arc,
};

use crate::device::Mapdrv;

/// `/dev/mapdrv` and the device its files open.
#[pin_data]
pub(crate) struct Registration {
    // Declared first so that it is dropped first: no new opens once the
    // module starts to go away.
    #[pin]
    misc: MiscDeviceRegistration<Mapdrv>,
    device: Arc<Mapdrv>,
}

impl Registration {
    /// Registers `/dev/mapdrv` for `device`; it can be opened from then on.
    pub(crate) fn new(device: Arc<Mapdrv>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            device,
            // Last: `open` may run as soon as this is done, and uses `device`.
            misc <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"mapdrv" }),
        })
    }

    /// The device that was registered.
    pub(crate) fn device(&self) -> &Arc<Mapdrv> {
        &self.device
    }

    /// The device of `misc`, for `MiscDevice::open`.
    pub(crate) fn device_of(misc: &MiscDeviceRegistration<Mapdrv>) -> &Arc<Mapdrv> {
        let misc = core::ptr::from_ref(misc);
        // SAFETY: By the type invariant `misc` is the `misc` field of a
        // `Registration`, which is pinned and lives at least as long as the
        // borrow of its field that the caller holds (`misc_open` keeps the
        // registration alive while it calls `open`), so the containing struct
        // is live for the returned borrow.
        let this = unsafe { &*kernel::container_of!(misc, Registration, misc) };
        &this.device
    }
}
