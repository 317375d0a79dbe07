//! Mistakes with `owner` and `auth`, all reported at once.
use datasync::prelude::*;

#[derive(DataSync)]
#[datasync(auth(read = "ownr", writ = "owner"))]
pub struct NoOwner {
    pub id: String,
    pub text: String,
}

#[derive(DataSync)]
#[datasync(auth(write = "owner", read = "group:"))]
pub struct OwnerRuleWithoutOwner {
    pub id: String,
}

#[derive(DataSync)]
#[datasync(owner = "missing")]
pub struct NamesNoField {
    pub id: String,
}

#[derive(DataSync)]
pub struct TwoOwners {
    pub id: String,
    #[datasync(owner)]
    pub a: String,
    #[datasync(owner)]
    pub b: String,
}

#[derive(DataSync)]
pub struct NumberOwner {
    pub id: String,
    #[datasync(owner)]
    pub user: i64,
}

fn main() {}
