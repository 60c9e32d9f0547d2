//! BlazeFace (MediaPipe short-range face detector): placeholder until implemented below.
