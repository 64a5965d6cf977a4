//! The optional-value ops (opset 15 on): Optional, OptionalHasElement and OptionalGetElement.
//! An optional wraps a tensor or a sequence, or holds none; from opset 18 the last two also
//! accept a plain tensor or sequence (always "has an element") and a missing input (none).

use crate::ctx::{Ctx, Result};
use crate::value::{Array, Val};

pub(crate) fn optional(ctx: &Ctx) -> Result<Vec<Val>> {
    let out = match ctx.desc.op_type.as_str() {
        // With no input the `type` attribute names what is missing; the value is the same.
        "Optional" => Val::Opt(ctx.opt_val(0).map(|v| Box::new(v.clone()))),
        "OptionalHasElement" => {
            let has = match ctx.opt_val(0) {
                None => false,
                Some(Val::Opt(o)) => o.is_some(),
                Some(_) => true,
            };
            Array::scalar(has).into()
        }
        "OptionalGetElement" => match ctx.opt_val(0) {
            Some(Val::Opt(Some(v))) => (**v).clone(),
            Some(Val::Opt(None)) | None => {
                return Err(ctx.err("the optional holds no element"));
            }
            Some(v) => v.clone(),
        },
        other => unreachable!("registered for the optional ops only, not {other}"),
    };
    Ok(vec![out])
}
