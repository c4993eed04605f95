//! When a run evaluates or saves.

/// Something done every `every` steps (0: never) and at the `last` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every {
    pub every: u64,
    pub last: u64,
}

impl Every {
    /// Whether it is due after `step`.
    pub fn due(&self, step: u64) -> bool {
        step == self.last || (self.every > 0 && step.is_multiple_of(self.every))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_at_multiples_and_the_last_step() {
        let due: Vec<u64> = (1..=10)
            .filter(|&s| Every { every: 4, last: 10 }.due(s))
            .collect();
        assert_eq!(due, [4, 8, 10]);
        let never: Vec<u64> = (1..=5)
            .filter(|&s| Every { every: 0, last: 5 }.due(s))
            .collect();
        assert_eq!(never, [5]);
    }
}
