use datasync::prelude::*;

#[derive(DataSync)]
pub enum Note {
    Text(String),
}

fn main() {}
