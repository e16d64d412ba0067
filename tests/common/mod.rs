#![allow(dead_code)]

pub mod emu;
pub mod openapi;
