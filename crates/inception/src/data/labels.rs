//! Class names: the ImageNet-1k names built into the binary, or a trained model's own.

use std::borrow::Cow;
use std::sync::Arc;

/// The 1000 ImageNet-1k class names in class-index order — the order of every published
/// torchvision, Keras and timm ImageNet checkpoint (torchvision's short names, e.g. `tabby`).
const IMAGENET: &str = include_str!("imagenet_classes.txt");

/// The metadata key under which a checkpoint stores its class names (a JSON list of strings).
pub const CLASSES_KEY: &str = "inception.classes";

/// The names of a classifier's outputs.
///
/// ```
/// use inception::data::Labels;
///
/// let labels = Labels::imagenet();
/// assert_eq!(labels.len(), 1000);
/// assert_eq!(labels.name(281), "tabby");
/// assert_eq!(Labels::numbered(3).name(2), "class_2");
/// // TF-slim's classifiers have 1001 outputs, class 0 being "background".
/// let slim = Labels::for_classes(1001, None);
/// assert_eq!((slim.name(0).as_ref(), slim.name(282).as_ref()), ("background", "tabby"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Labels {
    names: Arc<[String]>,
    /// What the names are (`imagenet-1k`, `checkpoint`, `numbered`).
    pub source: &'static str,
}

impl Labels {
    /// The ImageNet-1k class names.
    pub fn imagenet() -> Self {
        Self {
            names: IMAGENET.lines().map(str::to_string).collect(),
            source: "imagenet-1k",
        }
    }

    /// TF-slim's 1001 classes: `background` (class 0), then ImageNet-1k's names.
    pub fn imagenet_with_background() -> Self {
        Self {
            names: std::iter::once("background")
                .chain(IMAGENET.lines())
                .map(str::to_string)
                .collect(),
            source: "imagenet-1k+background",
        }
    }

    /// A trained model's own class names (e.g. an ImageFolder's sub-folder names).
    pub fn new(names: Vec<String>) -> Self {
        Self {
            names: names.into(),
            source: "checkpoint",
        }
    }

    /// `class_0` … `class_{n-1}`, for a classifier whose names are unknown.
    pub fn numbered(n: usize) -> Self {
        Self {
            names: (0..n).map(|i| format!("class_{i}")).collect(),
            source: "numbered",
        }
    }

    /// The names a classifier with `classes` outputs should show: the checkpoint's own
    /// (`stored`, when their count fits), else ImageNet's for 1000 classes (with TF-slim's
    /// `background` first for 1001), else numbers.
    pub fn for_classes(classes: usize, stored: Option<Vec<String>>) -> Self {
        match stored {
            Some(names) if names.len() == classes => Self::new(names),
            _ if classes == 1000 => Self::imagenet(),
            _ if classes == 1001 => Self::imagenet_with_background(),
            _ => Self::numbered(classes),
        }
    }

    /// How many classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no names.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of class `index` (`class_{index}` past the end).
    pub fn name(&self, index: usize) -> Cow<'_, str> {
        match self.names.get(index) {
            Some(n) => Cow::Borrowed(n),
            None => Cow::Owned(format!("class_{index}")),
        }
    }

    /// All names, in class-index order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}
