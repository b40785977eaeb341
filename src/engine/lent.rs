//! A value owned, or borrowed from another of its kind: how a [`Workload::view`] shares the
//! lists of the workload it copies.
//!
//! `Cow` would do but for variance: its owned form is an associated type, which makes a type
//! holding `Cow<'a, [T<'a>]>` invariant in `'a`, and the engine relies on shortening a
//! workload's lifetime (a re-check's scripts live shorter than the object).
//!
//! [`Workload::view`]: crate::engine::workload::Workload::view

use std::fmt;
use std::ops::Deref;

/// Reads as the value either way: `Debug`, equality and iteration see through it.
#[derive(Clone)]
pub enum Lent<'a, T> {
    Owned(T),
    Borrowed(&'a T),
}

impl<T> Lent<'_, T> {
    /// Borrowed from this one, whichever it is.
    pub fn lend(&self) -> Lent<'_, T> {
        Lent::Borrowed(self)
    }
}

impl<T> Deref for Lent<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Lent::Owned(value) => value,
            Lent::Borrowed(value) => value,
        }
    }
}

impl<'s, T> IntoIterator for &'s Lent<'_, T>
where
    &'s T: IntoIterator,
{
    type Item = <&'s T as IntoIterator>::Item;
    type IntoIter = <&'s T as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        (**self).into_iter()
    }
}

impl<T: fmt::Debug> fmt::Debug for Lent<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: Default> Default for Lent<'_, T> {
    fn default() -> Self {
        Lent::Owned(T::default())
    }
}

impl<T> From<T> for Lent<'_, T> {
    fn from(value: T) -> Self {
        Lent::Owned(value)
    }
}

impl<T: PartialEq> PartialEq for Lent<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Eq> Eq for Lent<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lent_value_reads_as_the_original() {
        let original: Lent<'_, Vec<&str>> = vec!["sh", "-c", "app"].into();
        let view = original.lend();
        assert!(matches!(view, Lent::Borrowed(_)));
        assert_eq!(view, original);
        assert_eq!(*view, ["sh", "-c", "app"]);
        assert_eq!(format!("{view:?}"), format!("{original:?}"));
    }

    /// The reason for the type: a view of a long-lived value can hold shorter-lived borrows.
    #[test]
    fn a_view_takes_shorter_lived_words() {
        let original: Lent<'static, Vec<&'static str>> = vec!["app"].into();
        let word = String::from("exec app");
        let view: Lent<'_, Vec<&str>> = original.lend();
        let mut words = (*view).clone();
        words[0] = &word;
        let edited: Lent<'_, Vec<&str>> = words.into();
        assert_eq!(*edited, ["exec app"]);
        assert_eq!(*view, ["app"]);
    }
}
