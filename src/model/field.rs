//! The seven fields of the PATCH body, which are also the columns of the
//! input, and sets of them. Leaf of `model`: the user object, the body and
//! the comparison all name fields, and none of them is needed to do so.

/// A field of the PATCH body, which is also a column of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Email,
    Name,
    Lang,
    Phone,
    Company,
    Groups,
    AuthTypes,
}

impl Field {
    pub(crate) const ALL: [Field; 7] = [
        Field::Email,
        Field::Name,
        Field::Lang,
        Field::Phone,
        Field::Company,
        Field::Groups,
        Field::AuthTypes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::Name => "name",
            Field::Lang => "lang",
            Field::Phone => "phone",
            Field::Company => "company",
            Field::Groups => "groups",
            Field::AuthTypes => "auth_types",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|field| field.name() == name)
    }

    /// Only these may be set to JSON null.
    pub(crate) fn nullable(self) -> bool {
        matches!(self, Field::Name | Field::Phone)
    }
}

/// A set of fields: those a row changes, those an answer left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FieldSet(u8);

impl FieldSet {
    pub(crate) const ALL: FieldSet = FieldSet(0b111_1111);

    pub fn with(self, field: Field) -> FieldSet {
        FieldSet(self.0 | bit(field))
    }

    pub fn contains(self, field: Field) -> bool {
        self.0 & bit(field) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The fields in either set.
    pub(crate) fn with_all(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }

    /// The fields in both sets.
    pub fn and(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 & other.0)
    }

    /// The fields of this set that `other` lacks.
    pub fn without(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 & !other.0)
    }

    /// The fields, in the order of [`Field::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL
            .into_iter()
            .filter(move |field| self.contains(*field))
    }

    /// `name, phone`: the fields as a message names them.
    pub fn names(self) -> String {
        self.iter().map(Field::name).collect::<Vec<_>>().join(", ")
    }
}

impl FromIterator<Field> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Field>>(fields: I) -> FieldSet {
        fields.into_iter().fold(FieldSet::default(), FieldSet::with)
    }
}

fn bit(field: Field) -> u8 {
    1 << field as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets() {
        let set: FieldSet = [Field::Phone, Field::Name].into_iter().collect();
        assert_eq!(set.iter().collect::<Vec<_>>(), [Field::Name, Field::Phone]);
        assert_eq!(set.names(), "name, phone");
        assert!(FieldSet::ALL.without(set).contains(Field::Email));
        assert!(!FieldSet::ALL.without(set).contains(Field::Name));
        assert_eq!(FieldSet::ALL.iter().count(), 7);
        assert_eq!(
            set.and(FieldSet::default().with(Field::Name)).names(),
            "name"
        );
    }
}
