//! A job object that ends its processes when it is closed (`JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`).
//! The station service puts each session helper it starts in one it holds for its whole life:
//! however the service ends (stopped, crashed, killed by an uninstall), Windows closes the
//! job with it and the helper ends too, so no helper outlives its service or keeps the
//! program file in use.

use std::os::windows::io::{AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle};
use std::ptr::null;

use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
    SetInformationJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};

use crate::Win32Error;

/// A job whose processes end when the last handle to it closes.
#[derive(Debug)]
pub struct KillOnCloseJob(OwnedHandle);

impl KillOnCloseJob {
    pub fn new() -> Result<Self, Win32Error> {
        // SAFETY: no security attributes, no name: an unnamed job only this handle reaches.
        let job = unsafe { CreateJobObjectW(null(), null()) };
        if job.is_null() {
            return Err(Win32Error::last("CreateJobObjectW"));
        }
        // SAFETY: the call succeeded: the handle is ours.
        let job = KillOnCloseJob(unsafe { OwnedHandle::from_raw_handle(job) });
        // SAFETY: plain data; all zero is "no limit", then the one flag is set.
        let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: `limits` is the structure this information class takes, with its size.
        let ok = unsafe {
            SetInformationJobObject(
                job.0.as_raw_handle(),
                JobObjectExtendedLimitInformation,
                (&limits as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
                std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            )
        };
        if ok == 0 {
            return Err(Win32Error::last("SetInformationJobObject"));
        }
        Ok(job)
    }

    /// Puts the process behind `process` (a handle with PROCESS_SET_QUOTA and
    /// PROCESS_TERMINATE rights, as CreateProcess returns) in the job.
    pub fn assign(&self, process: BorrowedHandle<'_>) -> Result<(), Win32Error> {
        // SAFETY: both handles are open for the call: the job's is ours, `process` is
        // borrowed for it.
        if unsafe { AssignProcessToJobObject(self.0.as_raw_handle(), process.as_raw_handle()) } == 0
        {
            return Err(Win32Error::last("AssignProcessToJobObject"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::windows::io::AsHandle;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[test]
    fn closing_the_job_ends_its_processes() {
        let job = KillOnCloseJob::new().unwrap();
        // `pause` waits for a key on its input, which never comes.
        let mut child = Command::new("cmd.exe")
            .args(["/c", "pause"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        job.assign(child.as_handle()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child ended by itself"
        );
        drop(job);
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "the child outlived its job by 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
