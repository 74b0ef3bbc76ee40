pub mod deploy;
pub mod replay;
pub mod simulate;
