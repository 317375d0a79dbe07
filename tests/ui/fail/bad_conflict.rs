use datasync::prelude::*;

#[derive(DataSync)]
#[datasync(conflict = "client_win")]
pub struct Note {
    pub id: String,
}

#[derive(DataSync)]
#[datasync(conflict = "last_write_wins")]
pub struct Memo {
    pub id: String,
}

fn main() {}
