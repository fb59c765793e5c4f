//! NCMEC CyberTipline filing.

#![forbid(unsafe_code)]
