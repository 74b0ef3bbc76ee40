pub mod deploy;
pub mod simulate;
