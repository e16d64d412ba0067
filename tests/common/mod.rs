#![allow(dead_code)]

pub mod cli;
pub mod emu;
pub mod mount;
pub mod openapi;
