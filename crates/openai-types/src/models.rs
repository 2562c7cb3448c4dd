//! The models API: `GET /v1/models` and `GET /v1/models/{id}`.

use serde::{Deserialize, Serialize};

use crate::tag::fixed_tag;

fixed_tag!(
    /// `"model"`.
    ModelObject = "model"
);
fixed_tag!(
    /// `"list"`.
    ListObject = "list"
);

/// One model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// The model id clients send as `model`.
    pub id: String,
    /// Always `"model"`.
    pub object: ModelObject,
    /// Unix seconds.
    pub created: u64,
    /// Owner.
    pub owned_by: String,
}

impl Model {
    /// A model entry.
    pub fn new(id: impl Into<String>, created: u64, owned_by: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            object: ModelObject,
            created,
            owned_by: owned_by.into(),
        }
    }
}

/// `{"object":"list","data":[...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    /// Always `"list"`.
    pub object: ListObject,
    /// The models.
    pub data: Vec<Model>,
}

impl From<Vec<Model>> for ModelList {
    fn from(data: Vec<Model>) -> Self {
        Self {
            object: ListObject,
            data,
        }
    }
}
