//! A named lock over create-only parameters (being written).
