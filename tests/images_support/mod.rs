#![allow(dead_code)]
pub mod examples;
pub mod registry;
