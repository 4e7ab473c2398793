//! Integration tests of weir-validation: the whole matrix, and single rows
//! whose evidence is checked in detail.

mod matrix;
