#![allow(dead_code)]
pub mod examples;
