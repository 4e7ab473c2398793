//! `ChaosTransform`: passes chunks through (optionally split in two) and
//! fails or panics where the plan says.

use bytes::Bytes;
use weir::{BoxError, Transform};

use crate::schedule::{TransformFault, TransformPlan};

/// A transform following a [`TransformPlan`].
#[derive(Debug)]
pub struct ChaosTransform {
    plan: TransformPlan,
    seen: usize,
}

impl ChaosTransform {
    /// The transform for `plan`.
    pub fn new(plan: TransformPlan) -> Self {
        Self { plan, seen: 0 }
    }
}

impl Transform for ChaosTransform {
    fn name(&self) -> &str {
        "chaos"
    }

    fn transform(&mut self, mut chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        let i = self.seen;
        self.seen += 1;
        match self.plan.fault {
            Some(TransformFault::FailAt(at)) if at == i => {
                return Err(format!("chaos: transform fails at chunk {i}").into());
            }
            Some(TransformFault::PanicAt(at)) if at == i => panic!("chaos: transform panics at chunk {i}"),
            _ => {}
        }
        if self.plan.split && chunk.len() > 1 {
            let head = chunk.split_to(chunk.len() / 2);
            out.push(head);
        }
        out.push(chunk);
        Ok(())
    }

    fn cpu_heavy(&self) -> bool {
        self.plan.heavy
    }
}
