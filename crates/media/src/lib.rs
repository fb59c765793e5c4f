//! Media decoding under limits (under construction).
