use datasync::prelude::*;

#[derive(DataSync)]
pub struct Note;

fn main() {}
