pub mod app;
pub mod deploy;
pub mod push;
pub mod replay;
pub mod simulate;
pub mod status;
pub mod validate;
