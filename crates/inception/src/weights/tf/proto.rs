//! The subset of TensorFlow's protocol buffers a checkpoint is made of (`tensor_bundle.proto`,
//! `saved_tensor_slice.proto`, `tensor.proto`, `tensor_shape.proto`, `tensor_slice.proto`), as
//! prost messages. Unknown fields are skipped.

/// `tensorflow.TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<Dim>,
    #[prost(bool, tag = "3")]
    pub unknown_rank: bool,
}

/// `tensorflow.TensorShapeProto.Dim`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dim {
    #[prost(int64, tag = "1")]
    pub size: i64,
    #[prost(string, tag = "2")]
    pub name: String,
}

/// `tensorflow.TensorSliceProto`: one `(start, length)` per dimension, no length = all of it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorSliceProto {
    #[prost(message, repeated, tag = "1")]
    pub extent: Vec<Extent>,
}

/// `tensorflow.TensorSliceProto.Extent`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Extent {
    #[prost(int64, tag = "1")]
    pub start: i64,
    #[prost(int64, optional, tag = "2")]
    pub length: Option<i64>,
}

/// `tensorflow.BundleHeaderProto`: the entry under the empty key of a tensor bundle.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BundleHeaderProto {
    #[prost(int32, tag = "1")]
    pub num_shards: i32,
    /// 0 little-endian, 1 big-endian.
    #[prost(int32, tag = "2")]
    pub endianness: i32,
}

/// `tensorflow.BundleEntryProto`: where a tensor's bytes are and how to check them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BundleEntryProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
    #[prost(int32, tag = "3")]
    pub shard_id: i32,
    #[prost(int64, tag = "4")]
    pub offset: i64,
    #[prost(int64, tag = "5")]
    pub size: i64,
    #[prost(fixed32, tag = "6")]
    pub crc32c: u32,
    #[prost(message, repeated, tag = "7")]
    pub slices: Vec<TensorSliceProto>,
}

/// `tensorflow.TensorProto`, with the typed repeated fields the V1 format stores values in.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    /// f16 and bf16 values, one per int32.
    #[prost(int32, repeated, tag = "13")]
    pub half_val: Vec<i32>,
}

/// `tensorflow.SavedTensorSlices`: a V1 checkpoint's values (metadata or one slice's data).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedTensorSlices {
    #[prost(message, optional, tag = "1")]
    pub meta: Option<SavedTensorSliceMeta>,
    #[prost(message, optional, tag = "2")]
    pub data: Option<SavedSlice>,
}

/// `tensorflow.SavedTensorSliceMeta`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedTensorSliceMeta {
    #[prost(message, repeated, tag = "1")]
    pub tensor: Vec<SavedSliceMeta>,
}

/// `tensorflow.SavedSliceMeta`: one variable, its shape, type and the slices saved of it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedSliceMeta {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
    #[prost(int32, tag = "3")]
    pub r#type: i32,
    #[prost(message, repeated, tag = "4")]
    pub slice: Vec<TensorSliceProto>,
}

/// `tensorflow.SavedSlice`: one slice's values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedSlice {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub slice: Option<TensorSliceProto>,
    #[prost(message, optional, tag = "3")]
    pub data: Option<TensorProto>,
}

/// `tensorflow.TrackableObjectGraph`: a TF2 checkpoint's objects, stored under the key
/// `_CHECKPOINTABLE_OBJECT_GRAPH`; it names the variable behind each checkpoint key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TrackableObjectGraph {
    #[prost(message, repeated, tag = "1")]
    pub nodes: Vec<TrackableObject>,
}

/// `tensorflow.TrackableObjectGraph.TrackableObject`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TrackableObject {
    #[prost(message, repeated, tag = "1")]
    pub children: Vec<ObjectReference>,
    #[prost(message, repeated, tag = "2")]
    pub attributes: Vec<SerializedTensor>,
}

/// `tensorflow.TrackableObjectGraph.TrackableObject.ObjectReference`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ObjectReference {
    #[prost(int32, tag = "1")]
    pub node_id: i32,
    #[prost(string, tag = "2")]
    pub local_name: String,
}

/// `tensorflow.TrackableObjectGraph.TrackableObject.SerializedTensor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SerializedTensor {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub full_name: String,
    #[prost(string, tag = "3")]
    pub checkpoint_key: String,
}

/// `tensorflow.SavedModel` (`saved_model.pb`): only what names the variables is declared (the
/// graph and functions, most of the file, are skipped by the decoder).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedModel {
    #[prost(message, repeated, tag = "2")]
    pub meta_graphs: Vec<MetaGraphDef>,
}

/// `tensorflow.MetaGraphDef`: its `object_graph_def`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetaGraphDef {
    #[prost(message, optional, tag = "7")]
    pub object_graph_def: Option<SavedObjectGraph>,
}

/// `tensorflow.SavedObjectGraph`: the SavedModel's objects, rooted at node 0.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedObjectGraph {
    #[prost(message, repeated, tag = "1")]
    pub nodes: Vec<SavedObject>,
}

/// `tensorflow.SavedObject`: its children and, for a variable, the variable.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedObject {
    #[prost(message, repeated, tag = "1")]
    pub children: Vec<ObjectReference>,
    #[prost(message, optional, tag = "7")]
    pub variable: Option<SavedVariable>,
}

/// `tensorflow.SavedVariable`: a variable's own name (`InceptionV3/Conv2d_1a_3x3/weights`) and
/// whether it is trained.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedVariable {
    #[prost(bool, tag = "3")]
    pub trainable: bool,
    #[prost(string, tag = "6")]
    pub name: String,
}
