#![allow(dead_code)]

pub mod emu;
pub mod mount;
pub mod openapi;
