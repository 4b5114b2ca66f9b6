//! Who could have written a file, from its owner and access list in SDDL (read by
//! `lanterne_winsys::security::describe`): the configuration decides what the service runs as
//! LocalSystem, so it must be owned and writable only by LocalSystem, the Administrators
//! group, TrustedInstaller, or the agent's own account — the Windows counterpart of "owned by
//! root, not writable by group or others" on Linux.

/// Accounts trusted to write the agent's files: LocalSystem, Administrators, TrustedInstaller.
const TRUSTED: [&str; 5] = [
    "SY",
    "BA",
    "S-1-5-18",
    "S-1-5-32-544",
    "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464",
];

/// Rights that let an account change a file or who may change it: generic all/write, file
/// all/write, write DACL, write owner, delete.
const WRITE_LETTERS: [&str; 7] = ["GA", "GW", "FA", "FW", "WD", "WO", "SD"];
const WRITE_MASK: u32 = 0x2 // FILE_WRITE_DATA
    | 0x4 // FILE_APPEND_DATA
    | 0x1_0000 // DELETE
    | 0x4_0000 // WRITE_DAC
    | 0x8_0000 // WRITE_OWNER
    | 0x1000_0000 // GENERIC_ALL
    | 0x4000_0000; // GENERIC_WRITE

fn trusted(sid: &str, me: Option<&str>) -> bool {
    TRUSTED.contains(&sid) || me == Some(sid)
}

/// Whether an ACE's rights field (`0x1f01ff` or letter pairs such as `FRFX`) can write.
fn rights_write(rights: &str) -> Result<bool, String> {
    if let Some(hex) = rights
        .strip_prefix("0x")
        .or_else(|| rights.strip_prefix("0X"))
    {
        let mask = u32::from_str_radix(hex, 16).map_err(|_| format!("rights '{rights}'"))?;
        return Ok(mask & WRITE_MASK != 0);
    }
    if rights.len() % 2 != 0 || !rights.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(format!("rights '{rights}'"));
    }
    Ok((0..rights.len())
        .step_by(2)
        .any(|i| WRITE_LETTERS.contains(&&rights[i..i + 2])))
}

/// Ok when only trusted accounts (or `me`, the agent's own account SID) own or may write the
/// object described by `sddl`; Err says who else could.
pub fn check_writers(sddl: &str, me: Option<&str>) -> Result<(), String> {
    // The owner is a SID string ("S-1-…") or a two-letter alias ("BA", "SY").
    let owner = sddl
        .strip_prefix("O:")
        .map(|rest| {
            if rest.starts_with("S-") {
                let end = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '-' || c == 'S'))
                    .unwrap_or(rest.len());
                &rest[..end]
            } else {
                rest.get(..2).unwrap_or("")
            }
        })
        .filter(|o| o.len() >= 2)
        .ok_or_else(|| format!("has no owner in its security descriptor ({sddl})"))?;
    if !trusted(owner, me) {
        return Err(format!(
            "belongs to {owner}, neither LocalSystem, the Administrators group nor this agent's account"
        ));
    }
    let Some(dacl) = sddl.find("D:").map(|i| &sddl[i + 2..]) else {
        return Err("has no access list: anyone may write it".into());
    };
    if dacl.starts_with("NO_ACCESS_CONTROL") {
        return Err("has no access list: anyone may write it".into());
    }
    for ace in dacl.split('(').skip(1) {
        let ace = ace.split(')').next().unwrap_or("");
        let fields: Vec<&str> = ace.split(';').collect();
        if fields.len() < 6 {
            return Err(format!("has an access entry Lanterne cannot read ({ace})"));
        }
        let (kind, flags, rights, sid) = (fields[0], fields[1], fields[2], fields[5]);
        // Denials only take rights away; entries only for what is created inside (IO) do not
        // apply to the file itself.
        if kind == "D" || kind == "OD" || flags.contains("IO") {
            continue;
        }
        if rights_write(rights)? && !trusted(sid, me) {
            return Err(format!("may be written by {sid} (access entry {ace})"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_owned_files_writable_by_admins_only_pass() {
        for ok in [
            "O:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)",
            "O:SYG:SYD:(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1200a9;;;BU)",
            "O:BAD:AI(A;ID;FA;;;SY)(A;ID;FRFX;;;BU)(A;OICIIOID;GA;;;CO)",
            "O:S-1-5-21-1-2-3-1000D:(A;;FA;;;S-1-5-21-1-2-3-1000)",
        ] {
            check_writers(ok, Some("S-1-5-21-1-2-3-1000")).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn files_others_own_or_may_write_are_refused_with_who() {
        let cases = [
            (
                "O:S-1-5-21-1-2-3-1001D:(A;;FA;;;SY)",
                "belongs to S-1-5-21-1-2-3-1001",
            ),
            ("O:BAD:(A;;FA;;;BA)(A;ID;0x1301bf;;;BU)", "written by BU"),
            ("O:BAD:(A;;FA;;;BA)(A;;FW;;;WD)", "written by WD"),
            ("O:BAD:(A;;FA;;;BA)(A;;WD;;;AU)", "written by AU"),
            ("O:BAD:NO_ACCESS_CONTROL", "no access list"),
            ("O:BA", "no access list"),
            ("D:(A;;FA;;;BA)", "no owner"),
            ("O:BAD:(A;;zz;;;BU)", "rights"),
            ("O:BAD:(A;;FA;;)", "cannot read"),
            ("O:DAD:(A;;FA;;;BA)", "belongs to DA"),
        ];
        for (sddl, why) in cases {
            let e = check_writers(sddl, Some("S-1-5-21-1-2-3-1000")).unwrap_err();
            assert!(e.contains(why), "{sddl}: {e}");
        }
        // Without knowing the agent's account, a user-owned file is refused.
        assert!(check_writers("O:S-1-5-21-1-2-3-1000D:(A;;FA;;;SY)", None).is_err());
        // A denial or an inherit-only entry does not let anyone write the file itself.
        check_writers("O:BAD:(D;;FA;;;BU)(A;OICIIO;FA;;;BU)(A;;FA;;;BA)", None).unwrap();
    }
}
