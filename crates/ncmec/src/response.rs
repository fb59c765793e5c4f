//! NCMEC's answers and their responseCodes.
//!
//! Every endpoint answers an XML document whose root is `<reportResponse>` (submit, upload,
//! fileinfo, retract, status) or `<reportDoneResponse>` (finish), carrying a `responseCode`
//! (0 is success) and, depending on the call, `reportId`, `fileId`, `hash` (the uploaded file's
//! MD5) and the finished report's `files/fileId` list.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A CyberTipline responseCode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResponseCode(pub u32);

/// What a responseCode means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeClass {
    /// 0: success.
    Ok,
    /// A server-side failure; the same call may succeed later (1000, 1100, 1110, 1111, 1300).
    Retryable,
    /// Credentials missing or lacking rights (2000, 3000, 3100, 3300): not retried, an
    /// operator has to fix the account.
    Auth,
    /// The request itself is wrong (4000, 4100, 4110, 4200): not retried, the report or
    /// file has to change.
    Invalid,
    /// The report or file does not exist (1210, 5001, 5002): for an unfinished report, NCMEC
    /// deleted it (24 h after opening, 1 h after the last change).
    NotFound,
    /// 5101: the report was already retracted (a repeated retract succeeded earlier).
    AlreadyRetracted,
    /// 5102: the report was already finished (a repeated finish succeeded earlier).
    AlreadyFinished,
    /// A code NCMEC has not documented; treated as a refusal, not retried.
    Unknown,
}

impl ResponseCode {
    /// Success.
    pub const OK: ResponseCode = ResponseCode(0);
    /// Server error.
    pub const SERVER_ERROR: ResponseCode = ResponseCode(1000);
    /// Authentication required.
    pub const AUTH_REQUIRED: ResponseCode = ResponseCode(2000);
    /// Not authorised.
    pub const NOT_AUTHORIZED: ResponseCode = ResponseCode(3000);
    /// Validation failed (including element order).
    pub const VALIDATION_FAILED: ResponseCode = ResponseCode(4100);
    /// Malformed XML.
    pub const MALFORMED_XML: ResponseCode = ResponseCode(4110);
    /// Invalid request.
    pub const INVALID_REQUEST: ResponseCode = ResponseCode(4000);
    /// No such report.
    pub const NO_SUCH_REPORT: ResponseCode = ResponseCode(5001);
    /// No such file.
    pub const NO_SUCH_FILE: ResponseCode = ResponseCode(5002);
    /// Already retracted.
    pub const ALREADY_RETRACTED: ResponseCode = ResponseCode(5101);
    /// Already finished.
    pub const ALREADY_FINISHED: ResponseCode = ResponseCode(5102);

    /// The code's class.
    pub fn class(self) -> CodeClass {
        match self.0 {
            0 => CodeClass::Ok,
            1000 | 1100 | 1110 | 1111 | 1300 => CodeClass::Retryable,
            2000 | 3000 | 3100 | 3300 => CodeClass::Auth,
            4000 | 4100 | 4110 | 4200 => CodeClass::Invalid,
            1210 | 5001 | 5002 => CodeClass::NotFound,
            5101 => CodeClass::AlreadyRetracted,
            5102 => CodeClass::AlreadyFinished,
            _ => CodeClass::Unknown,
        }
    }

    /// NCMEC's documented meaning, for messages when the answer carries no description.
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0 => "success",
            1000 => "server error",
            1100 => "save failed",
            1110 | 1111 => "upload failed",
            1210 => "not found",
            1300 => "update failed",
            2000 => "authentication required",
            3000 => "not authorized",
            3100 => "no submit rights",
            3300 => "no update rights",
            4000 => "invalid request",
            4100 => "validation failed",
            4110 => "malformed XML",
            4200 => "malformed file",
            5001 => "no such report",
            5002 => "no such file",
            5101 => "already retracted",
            5102 => "already finished",
            _ => "undocumented responseCode",
        }
    }
}

impl std::fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One parsed answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The root element's name (`reportResponse`, `reportDoneResponse`).
    pub root: String,
    /// `responseCode`.
    pub response_code: u32,
    /// `responseDescription`.
    pub response_description: Option<String>,
    /// `reportId`.
    pub report_id: Option<String>,
    /// `fileId` (upload).
    pub file_id: Option<String>,
    /// `hash`: the MD5 NCMEC computed of an uploaded file (upload).
    pub hash: Option<String>,
    /// `files/fileId`: the files of a finished report (finish).
    pub files: Vec<String>,
}

impl Response {
    /// The responseCode.
    pub fn code(&self) -> ResponseCode {
        ResponseCode(self.response_code)
    }

    /// Parses an answer of `endpoint`.
    pub fn parse(endpoint: &'static str, body: &str) -> Result<Response> {
        let malformed = |reason: String| Error::MalformedResponse { endpoint, reason };
        let doc = roxmltree::Document::parse(body).map_err(|e| malformed(e.to_string()))?;
        let root = doc.root_element();
        let child_text = |name: &str| {
            root.children()
                .find(|n| n.has_tag_name(name))
                .map(|n| n.text().unwrap_or("").trim().to_string())
        };
        let code = child_text("responseCode").ok_or_else(|| {
            malformed(format!("<{}> has no responseCode", root.tag_name().name()))
        })?;
        let response_code = code
            .parse()
            .map_err(|_| malformed(format!("responseCode {code:?} is not a number")))?;
        let files = root
            .children()
            .filter(|n| n.has_tag_name("files"))
            .flat_map(|f| f.children().filter(|n| n.has_tag_name("fileId")))
            .map(|n| n.text().unwrap_or("").trim().to_string())
            .collect();
        Ok(Response {
            root: root.tag_name().name().to_string(),
            response_code,
            response_description: child_text("responseDescription"),
            report_id: child_text("reportId").filter(|s| !s.is_empty()),
            file_id: child_text("fileId").filter(|s| !s.is_empty()),
            hash: child_text("hash").filter(|s| !s.is_empty()),
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_shapes() {
        let r = Response::parse(
            "/submit",
            "<?xml version=\"1.0\"?><reportResponse><responseCode>0</responseCode>\
             <responseDescription>Success</responseDescription><reportId>4564654</reportId>\
             </reportResponse>",
        )
        .unwrap();
        assert_eq!(r.code(), ResponseCode::OK);
        assert_eq!(r.report_id.as_deref(), Some("4564654"));
        let u = Response::parse(
            "/upload",
            "<reportResponse><responseCode>0</responseCode><reportId>1</reportId>\
             <fileId>abc</fileId><hash>d41d8cd98f00b204e9800998ecf8427e</hash></reportResponse>",
        )
        .unwrap();
        assert_eq!(u.file_id.as_deref(), Some("abc"));
        assert_eq!(u.hash.as_deref(), Some("d41d8cd98f00b204e9800998ecf8427e"));
        let d = Response::parse(
            "/finish",
            "<reportDoneResponse><responseCode>0</responseCode><reportId>1</reportId>\
             <files><fileId>a</fileId><fileId>b</fileId></files></reportDoneResponse>",
        )
        .unwrap();
        assert_eq!(d.root, "reportDoneResponse");
        assert_eq!(d.files, vec!["a", "b"]);
    }

    #[test]
    fn classifies_every_documented_code() {
        for c in [1000, 1100, 1110, 1111, 1300] {
            assert_eq!(ResponseCode(c).class(), CodeClass::Retryable, "{c}");
        }
        for c in [2000, 3000, 3100, 3300] {
            assert_eq!(ResponseCode(c).class(), CodeClass::Auth, "{c}");
        }
        for c in [4000, 4100, 4110, 4200] {
            assert_eq!(ResponseCode(c).class(), CodeClass::Invalid, "{c}");
        }
        for c in [1210, 5001, 5002] {
            assert_eq!(ResponseCode(c).class(), CodeClass::NotFound, "{c}");
        }
        assert_eq!(ResponseCode(5101).class(), CodeClass::AlreadyRetracted);
        assert_eq!(ResponseCode(5102).class(), CodeClass::AlreadyFinished);
        assert_eq!(ResponseCode(0).class(), CodeClass::Ok);
        assert_eq!(ResponseCode(9999).class(), CodeClass::Unknown);
    }

    #[test]
    fn refuses_answers_without_a_code() {
        assert!(Response::parse("/status", "<reportResponse/>").is_err());
        assert!(Response::parse("/status", "not xml").is_err());
    }
}
