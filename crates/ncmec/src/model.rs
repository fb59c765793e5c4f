//! The CyberTipline `<report>` and `<fileDetails>` documents.
//!
//! Every type mirrors one complex type of NCMEC's XSD (as docs/reporting.md lists them), and
//! every `write` method emits its elements in the XSD's `xs:sequence` order: NCMEC validates
//! against the schema and answers 4100 to a report whose elements are out of order. Optional
//! fields are `Option` or empty `Vec`s and are left out when empty; NCMEC's flag elements
//! (report and file annotations) are written as empty elements.
//!
//! [`Report::to_xml`] and [`FileDetails::to_xml`] validate before writing: required fields,
//! the documented length limits, an incident time that is not in the future, an industry
//! classification only on files whose relevance is `Reported`, and what the XSD refuses but
//! the types allow (fields `<intendedRecipient>` lacks, `<details>` without pairs or with a
//! type other than EXIF or HASH).
//!
//! Shapes checked against the CyberTipline XSD as published in Boostport/ncmec-go
//! (`cybertipline/generate/cyber_tipline.xsd`, commit c9dee9b, November 2025).

use crate::time::Timestamp;
use crate::xml::Writer;
use crate::{Error, Result};

/// Most characters of `escalateToHighPriority`, NCMEC's documented limit.
pub const MAX_ESCALATE_CHARS: usize = 3000;
/// Most bytes of one report's XML. NCMEC documents no limit; a report is a few kilobytes and
/// text it must carry (chat excerpts) belongs in files, so a megabyte means a caller bug,
/// refused here rather than by NCMEC after the upload.
pub const MAX_REPORT_XML_BYTES: usize = 1024 * 1024;
/// Tolerance for an incident time ahead of the clock, seconds: clocks of the machines that
/// saw the incident and of the one filing differ by a few seconds; more than five minutes is a
/// wrong time zone or a wrong field, which NCMEC refuses.
pub const INCIDENT_CLOCK_SKEW_SECONDS: i64 = 300;

/// NCMEC's incident types, written as the exact strings the XSD enumerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentType {
    /// "Child Pornography (possession, manufacture, and distribution)".
    ChildPornography,
    /// "Child Sex Trafficking".
    ChildSexTrafficking,
    /// "Child Sex Tourism".
    ChildSexTourism,
    /// "Child Sexual Molestation".
    ChildSexualMolestation,
    /// "Misleading Domain Name".
    MisleadingDomainName,
    /// "Misleading Words or Digital Images on the Internet".
    MisleadingWordsOrDigitalImages,
    /// "Online Enticement of Children for Sexual Acts".
    OnlineEnticement,
    /// "Unsolicited Obscene Material Sent to a Child".
    UnsolicitedObsceneMaterial,
}

impl IncidentType {
    /// Every value, in the XSD's order.
    pub const ALL: [IncidentType; 8] = [
        IncidentType::ChildPornography,
        IncidentType::ChildSexTrafficking,
        IncidentType::ChildSexTourism,
        IncidentType::ChildSexualMolestation,
        IncidentType::MisleadingDomainName,
        IncidentType::MisleadingWordsOrDigitalImages,
        IncidentType::OnlineEnticement,
        IncidentType::UnsolicitedObsceneMaterial,
    ];

    /// The XSD's string.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentType::ChildPornography => {
                "Child Pornography (possession, manufacture, and distribution)"
            }
            IncidentType::ChildSexTrafficking => "Child Sex Trafficking",
            IncidentType::ChildSexTourism => "Child Sex Tourism",
            IncidentType::ChildSexualMolestation => "Child Sexual Molestation",
            IncidentType::MisleadingDomainName => "Misleading Domain Name",
            IncidentType::MisleadingWordsOrDigitalImages => {
                "Misleading Words or Digital Images on the Internet"
            }
            IncidentType::OnlineEnticement => "Online Enticement of Children for Sexual Acts",
            IncidentType::UnsolicitedObsceneMaterial => {
                "Unsolicited Obscene Material Sent to a Child"
            }
        }
    }
}

/// `<reportAnnotations>`: flags written as empty elements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportAnnotations {
    /// `<sextortion/>`.
    pub sextortion: bool,
    /// `<csamSolicitation/>`.
    pub csam_solicitation: bool,
    /// `<minorToMinorInteraction/>`.
    pub minor_to_minor_interaction: bool,
    /// `<spam/>`.
    pub spam: bool,
    /// `<sadisticOnlineExploitation/>`.
    pub sadistic_online_exploitation: bool,
}

impl ReportAnnotations {
    fn any(&self) -> bool {
        self.sextortion
            || self.csam_solicitation
            || self.minor_to_minor_interaction
            || self.spam
            || self.sadistic_online_exploitation
    }
}

/// `<incidentSummary>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentSummary {
    /// `<incidentType>`, required.
    pub incident_type: IncidentType,
    /// `<platform>`: the product where it happened.
    pub platform: Option<String>,
    /// `<escalateToHighPriority>`: why NCMEC should treat this first (at most
    /// [`MAX_ESCALATE_CHARS`]); present only for imminent danger.
    pub escalate_to_high_priority: Option<String>,
    /// `<reportAnnotations>`, written only when a flag is set.
    pub report_annotations: ReportAnnotations,
    /// `<incidentDateTime>`, required, not in the future.
    pub incident_date_time: Timestamp,
    /// `<incidentDateTimeDescription>`: what the time is (first seen, upload, report).
    pub incident_date_time_description: Option<String>,
}

/// `<email>` or `<phone>` of a person, with the XSD's attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// The address or number.
    pub value: String,
    /// `@type` (for example `Home`, `Work`, `Mobile`).
    pub kind: Option<String>,
    /// `@verified`.
    pub verified: Option<bool>,
    /// `@verificationDate`.
    pub verification_date: Option<Timestamp>,
}

impl Contact {
    /// A bare value without attributes.
    pub fn new(value: impl Into<String>) -> Contact {
        Contact {
            value: value.into(),
            ..Contact::default()
        }
    }

    fn write(&self, w: &mut Writer, name: &'static str) {
        w.text_with(
            name,
            &[
                ("type", self.kind.clone()),
                ("verified", self.verified.map(|v| v.to_string())),
                (
                    "verificationDate",
                    self.verification_date.map(|t| t.to_string()),
                ),
            ],
            &self.value,
        );
    }
}

/// `<address>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// `@type` (for example `Home`, `Business`).
    pub kind: Option<String>,
    /// `<address>`: street and number.
    pub street: Option<String>,
    /// `<city>`.
    pub city: Option<String>,
    /// `<zipCode>`.
    pub zip_code: Option<String>,
    /// `<state>` (US states).
    pub state: Option<String>,
    /// `<nonUsaState>`.
    pub non_usa_state: Option<String>,
    /// `<country>`, ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

impl Address {
    fn write(&self, w: &mut Writer) {
        w.open_with("address", &[("type", self.kind.clone())]);
        w.opt("address", self.street.as_deref());
        w.opt("city", self.city.as_deref());
        w.opt("zipCode", self.zip_code.as_deref());
        w.opt("state", self.state.as_deref());
        w.opt("nonUsaState", self.non_usa_state.as_deref());
        w.opt("country", self.country.as_deref());
        w.close();
    }
}

/// The XSD's Person type: the reporting person, a contact, a victim, a reported person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    /// `<firstName>`.
    pub first_name: Option<String>,
    /// `<lastName>`.
    pub last_name: Option<String>,
    /// `<phone>`*.
    pub phones: Vec<Contact>,
    /// `<email>`*.
    pub emails: Vec<Contact>,
    /// `<address>`*.
    pub addresses: Vec<Address>,
    /// `<age>`, years.
    pub age: Option<u32>,
    /// `<dateOfBirth>`, `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
}

impl Person {
    /// Writes the Person sequence inside an element the caller opened.
    fn write_fields(&self, w: &mut Writer) {
        write_name_and_contacts(
            w,
            self.first_name.as_deref(),
            self.last_name.as_deref(),
            &self.phones,
            &self.emails,
            &self.addresses,
        );
        w.opt("age", self.age.map(|a| a.to_string()).as_deref());
        w.opt("dateOfBirth", self.date_of_birth.as_deref());
    }

    fn write(&self, w: &mut Writer, name: &'static str) {
        w.open(name);
        self.write_fields(w);
        w.close();
    }

    fn validate(&self, path: &str) -> Result<()> {
        for e in &self.emails {
            check_email(&format!("{path}/email"), &e.value)?;
        }
        if let Some(d) = &self.date_of_birth {
            check_date(&format!("{path}/dateOfBirth"), d)?;
        }
        Ok(())
    }
}

/// The XSD's contactPerson type: the reporter's `<contactPerson>` and law enforcement's
/// `<officerContact>`. It is Person's sequence without `age` and `dateOfBirth`, which the XSD
/// leaves out, so a [`Person`] cannot be written there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactPerson {
    /// `<firstName>`.
    pub first_name: Option<String>,
    /// `<lastName>`.
    pub last_name: Option<String>,
    /// `<phone>`*.
    pub phones: Vec<Contact>,
    /// `<email>`*.
    pub emails: Vec<Contact>,
    /// `<address>`*.
    pub addresses: Vec<Address>,
}

impl ContactPerson {
    fn is_empty(&self) -> bool {
        *self == ContactPerson::default()
    }

    fn write(&self, w: &mut Writer, name: &'static str) {
        w.open(name);
        write_name_and_contacts(
            w,
            self.first_name.as_deref(),
            self.last_name.as_deref(),
            &self.phones,
            &self.emails,
            &self.addresses,
        );
        w.close();
    }

    fn validate(&self, path: &str) -> Result<()> {
        for e in &self.emails {
            check_email(&format!("{path}/email"), &e.value)?;
        }
        Ok(())
    }
}

/// `firstName, lastName, phone*, email*, address*`: the start of the XSD's person and the
/// whole of its contactPerson.
fn write_name_and_contacts(
    w: &mut Writer,
    first_name: Option<&str>,
    last_name: Option<&str>,
    phones: &[Contact],
    emails: &[Contact],
    addresses: &[Address],
) {
    w.opt("firstName", first_name);
    w.opt("lastName", last_name);
    for p in phones {
        p.write(w, "phone");
    }
    for e in emails {
        e.write(w, "email");
    }
    for a in addresses {
        a.write(w);
    }
}

/// What an `<ipCaptureEvent>` or `<deviceId>` records the address for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventName {
    /// "Login".
    Login,
    /// "Registration".
    Registration,
    /// "Purchase".
    Purchase,
    /// "Upload".
    Upload,
    /// "Other".
    Other,
    /// "Unknown".
    Unknown,
}

impl EventName {
    /// The XSD's string.
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::Login => "Login",
            EventName::Registration => "Registration",
            EventName::Purchase => "Purchase",
            EventName::Upload => "Upload",
            EventName::Other => "Other",
            EventName::Unknown => "Unknown",
        }
    }
}

/// `<ipCaptureEvent>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpCaptureEvent {
    /// `<ipAddress>`, required: IPv4 or IPv6.
    pub ip_address: String,
    /// `<eventName>`.
    pub event_name: Option<EventName>,
    /// `<dateTime>`.
    pub date_time: Option<Timestamp>,
    /// `<possibleProxy>`.
    pub possible_proxy: Option<bool>,
    /// `<port>`.
    pub port: Option<u16>,
}

impl IpCaptureEvent {
    fn write(&self, w: &mut Writer) {
        w.open("ipCaptureEvent");
        w.text("ipAddress", &self.ip_address);
        w.opt("eventName", self.event_name.map(EventName::as_str));
        w.opt("dateTime", self.date_time.map(|t| t.to_string()).as_deref());
        w.opt_bool("possibleProxy", self.possible_proxy);
        w.opt("port", self.port.map(|p| p.to_string()).as_deref());
        w.close();
    }

    fn validate(&self, path: &str) -> Result<()> {
        if self.ip_address.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::invalid(
                format!("{path}/ipAddress"),
                format!("{:?} is not an IPv4 or IPv6 address", self.ip_address),
            ));
        }
        Ok(())
    }
}

/// `<deviceId>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId {
    /// `<idType>` (for example `IMEI`, `Advertising ID`).
    pub id_type: String,
    /// `<idValue>`.
    pub id_value: String,
    /// `<eventName>`.
    pub event_name: Option<EventName>,
    /// `<dateTime>`.
    pub date_time: Option<Timestamp>,
}

impl DeviceId {
    fn write(&self, w: &mut Writer) {
        w.open("deviceId");
        w.text("idType", &self.id_type);
        w.text("idValue", &self.id_value);
        w.opt("eventName", self.event_name.map(EventName::as_str));
        w.opt("dateTime", self.date_time.map(|t| t.to_string()).as_deref());
        w.close();
    }
}

/// `<estimatedLocation>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EstimatedLocation {
    /// `<city>`.
    pub city: Option<String>,
    /// `<region>`.
    pub region: Option<String>,
    /// `<countryCode>`, ISO 3166-1 alpha-2.
    pub country_code: Option<String>,
}

/// One `<internetDetails>`: where on the internet the incident happened. The XSD makes each
/// `<internetDetails>` a choice of one incident kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InternetDetail {
    /// `<webPageIncident>`.
    WebPage {
        /// `<url>`*.
        urls: Vec<String>,
        /// `<additionalInfo>`.
        additional_info: Option<String>,
        /// `@thirdPartyHostedContent`: the content is on another company's server. An
        /// attribute of `<webPageIncident>` in the XSD, not a child element.
        third_party_hosted_content: Option<bool>,
    },
    /// `<emailIncident>`.
    Email {
        /// `<emailAddress>`*: addresses involved.
        email_addresses: Vec<Contact>,
        /// `<content>`: the message, or an excerpt.
        content: Option<String>,
        /// `<additionalInfo>`.
        additional_info: Option<String>,
    },
    /// `<newsgroupIncident>`.
    Newsgroup {
        /// `<name>`: the newsgroup.
        name: Option<String>,
        /// `<emailAddress>`*.
        email_addresses: Vec<Contact>,
        /// `<content>`.
        content: Option<String>,
        /// `<additionalInfo>`.
        additional_info: Option<String>,
    },
    /// `<chatImIncident>`.
    ChatIm {
        /// `<chatClient>`.
        chat_client: Option<String>,
        /// `<chatRoomName>`.
        chat_room_name: Option<String>,
        /// `<content>`: the conversation, or an excerpt.
        content: Option<String>,
        /// `<additionalInfo>`.
        additional_info: Option<String>,
    },
    /// `<onlineGamingIncident>`.
    OnlineGaming {
        /// `<gameName>`.
        game_name: Option<String>,
        /// `<console>`.
        console: Option<String>,
        /// `<content>`.
        content: Option<String>,
        /// `<additionalInfo>`.
        additional_info: Option<String>,
    },
    /// `<cellPhoneIncident>`.
    CellPhone {
        /// `<phoneNumber>`.
        phone_number: Option<Contact>,
        /// `<additionalInfo>`.
        additional_info: Option<String>,
    },
    /// `<nonInternetIncident>`.
    NonInternet {
        /// `<locationName>`.
        location_name: Option<String>,
        /// `<incidentAddress>`.
        incident_address: Option<Address>,
        /// `<additionalInfo>`.
        additional_info: Option<String>,
    },
    /// `<peer2peerIncident>`.
    PeerToPeer {
        /// `<client>`: the P2P software.
        client: Option<String>,
        /// `<ipCaptureEvent>`*.
        ip_capture_events: Vec<IpCaptureEvent>,
        /// `<fileNames>`: names the files were shared under.
        file_names: Option<String>,
        /// `<additionalInfo>`.
        additional_info: Option<String>,
    },
}

impl InternetDetail {
    fn write(&self, w: &mut Writer) {
        w.open("internetDetails");
        match self {
            InternetDetail::WebPage {
                urls,
                additional_info,
                third_party_hosted_content,
            } => {
                w.open_with(
                    "webPageIncident",
                    &[(
                        "thirdPartyHostedContent",
                        third_party_hosted_content.map(|b| b.to_string()),
                    )],
                );
                w.many("url", urls);
                w.opt("additionalInfo", additional_info.as_deref());
                w.close();
            }
            InternetDetail::Email {
                email_addresses,
                content,
                additional_info,
            } => {
                w.open("emailIncident");
                for e in email_addresses {
                    e.write(w, "emailAddress");
                }
                w.opt("content", content.as_deref());
                w.opt("additionalInfo", additional_info.as_deref());
                w.close();
            }
            InternetDetail::Newsgroup {
                name,
                email_addresses,
                content,
                additional_info,
            } => {
                w.open("newsgroupIncident");
                w.opt("name", name.as_deref());
                for e in email_addresses {
                    e.write(w, "emailAddress");
                }
                w.opt("content", content.as_deref());
                w.opt("additionalInfo", additional_info.as_deref());
                w.close();
            }
            InternetDetail::ChatIm {
                chat_client,
                chat_room_name,
                content,
                additional_info,
            } => {
                w.open("chatImIncident");
                w.opt("chatClient", chat_client.as_deref());
                w.opt("chatRoomName", chat_room_name.as_deref());
                w.opt("content", content.as_deref());
                w.opt("additionalInfo", additional_info.as_deref());
                w.close();
            }
            InternetDetail::OnlineGaming {
                game_name,
                console,
                content,
                additional_info,
            } => {
                w.open("onlineGamingIncident");
                w.opt("gameName", game_name.as_deref());
                w.opt("console", console.as_deref());
                w.opt("content", content.as_deref());
                w.opt("additionalInfo", additional_info.as_deref());
                w.close();
            }
            InternetDetail::CellPhone {
                phone_number,
                additional_info,
            } => {
                w.open("cellPhoneIncident");
                if let Some(p) = phone_number {
                    p.write(w, "phoneNumber");
                }
                w.opt("additionalInfo", additional_info.as_deref());
                w.close();
            }
            InternetDetail::NonInternet {
                location_name,
                incident_address,
                additional_info,
            } => {
                w.open("nonInternetIncident");
                w.opt("locationName", location_name.as_deref());
                if let Some(a) = incident_address {
                    w.open_with("incidentAddress", &[("type", a.kind.clone())]);
                    w.opt("address", a.street.as_deref());
                    w.opt("city", a.city.as_deref());
                    w.opt("zipCode", a.zip_code.as_deref());
                    w.opt("state", a.state.as_deref());
                    w.opt("nonUsaState", a.non_usa_state.as_deref());
                    w.opt("country", a.country.as_deref());
                    w.close();
                }
                w.opt("additionalInfo", additional_info.as_deref());
                w.close();
            }
            InternetDetail::PeerToPeer {
                client,
                ip_capture_events,
                file_names,
                additional_info,
            } => {
                w.open("peer2peerIncident");
                w.opt("client", client.as_deref());
                for e in ip_capture_events {
                    e.write(w);
                }
                w.opt("fileNames", file_names.as_deref());
                w.opt("additionalInfo", additional_info.as_deref());
                w.close();
            }
        }
        w.close();
    }

    fn validate(&self, path: &str) -> Result<()> {
        match self {
            InternetDetail::WebPage { urls, .. } => {
                for u in urls {
                    if !(u.starts_with("http://") || u.starts_with("https://")) {
                        return Err(Error::invalid(
                            format!("{path}/webPageIncident/url"),
                            format!("{u:?} is not an http(s) URL"),
                        ));
                    }
                }
            }
            InternetDetail::Email {
                email_addresses, ..
            }
            | InternetDetail::Newsgroup {
                email_addresses, ..
            } => {
                for e in email_addresses {
                    check_email(&format!("{path}/emailAddress"), &e.value)?;
                }
            }
            InternetDetail::PeerToPeer {
                ip_capture_events, ..
            } => {
                for e in ip_capture_events {
                    e.validate(&format!("{path}/peer2peerIncident/ipCaptureEvent"))?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// `<lawEnforcement>`: when law enforcement is already involved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LawEnforcement {
    /// `<agencyName>`, required when the element is present.
    pub agency_name: String,
    /// `<caseNumber>`.
    pub case_number: Option<String>,
    /// `<officerContact>`: the XSD's contactPerson type (no age or date of birth).
    pub officer_contact: Option<ContactPerson>,
    /// `<reportedToLe>`: the reporter also told law enforcement directly.
    pub reported_to_le: Option<bool>,
    /// `<servedLegalProcessDomestic>`.
    pub served_legal_process_domestic: Option<bool>,
    /// `<servedLegalProcessInternational>`.
    pub served_legal_process_international: Option<bool>,
}

/// `<reporter>`: who files, and how NCMEC reaches them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reporter {
    /// `<reportingPerson>`, required, with at least one email.
    pub reporting_person: Person,
    /// `<contactPerson>`: whom law enforcement should call, if not the reporting person. The
    /// XSD's contactPerson type (no age or date of birth).
    pub contact_person: Option<ContactPerson>,
    /// `<companyTemplate>`: the name of a template set up with NCMEC.
    pub company_template: Option<String>,
    /// `<termsOfService>`: the terms the reported user broke.
    pub terms_of_service: Option<String>,
    /// `<legalURL>`: where law enforcement sends legal process.
    pub legal_url: Option<String>,
}

/// `@type` of `<associatedAccount>`: how the account relates to the user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssociatedAccountType {
    /// "Billing".
    Billing,
    /// "Linked".
    Linked,
    /// "Business".
    Business,
    /// "Creator".
    Creator,
    /// "Parent/Guardian".
    ParentGuardian,
    /// "Other".
    Other,
}

impl AssociatedAccountType {
    /// The XSD's string.
    pub fn as_str(self) -> &'static str {
        match self {
            AssociatedAccountType::Billing => "Billing",
            AssociatedAccountType::Linked => "Linked",
            AssociatedAccountType::Business => "Business",
            AssociatedAccountType::Creator => "Creator",
            AssociatedAccountType::ParentGuardian => "Parent/Guardian",
            AssociatedAccountType::Other => "Other",
        }
    }
}

/// `<associatedAccount type="…">`: another account of the reported user. The XSD's
/// associatedAccount has a longer sequence (middle name, age, disabled flags, IP capture
/// events and more); these are the parts Safeguard has, in the XSD's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociatedAccount {
    /// `@type`, required.
    pub kind: AssociatedAccountType,
    /// `<platform>`: the full application name of the account.
    pub platform: Option<String>,
    /// `<firstName>`.
    pub first_name: Option<String>,
    /// `<lastName>`.
    pub last_name: Option<String>,
    /// `<phone>`*.
    pub phones: Vec<Contact>,
    /// `<email>`*.
    pub emails: Vec<Contact>,
    /// `<espService>`.
    pub esp_service: Option<String>,
    /// `<espIdentifier>`: the account's id.
    pub esp_identifier: Option<String>,
    /// `<profileUrl>`*.
    pub profile_urls: Vec<String>,
    /// `<screenName>`.
    pub screen_name: Option<String>,
    /// `<displayName>`*.
    pub display_names: Vec<String>,
    /// `<additionalInfo>`.
    pub additional_info: Option<String>,
}

impl AssociatedAccount {
    /// An account of `kind` with nothing else.
    pub fn new(kind: AssociatedAccountType) -> AssociatedAccount {
        AssociatedAccount {
            kind,
            platform: None,
            first_name: None,
            last_name: None,
            phones: Vec::new(),
            emails: Vec::new(),
            esp_service: None,
            esp_identifier: None,
            profile_urls: Vec::new(),
            screen_name: None,
            display_names: Vec::new(),
            additional_info: None,
        }
    }

    fn write(&self, w: &mut Writer) {
        w.open_with(
            "associatedAccount",
            &[("type", Some(self.kind.as_str().into()))],
        );
        w.opt("platform", self.platform.as_deref());
        w.opt("firstName", self.first_name.as_deref());
        w.opt("lastName", self.last_name.as_deref());
        for p in &self.phones {
            p.write(w, "phone");
        }
        for e in &self.emails {
            e.write(w, "email");
        }
        w.opt("espService", self.esp_service.as_deref());
        w.opt("espIdentifier", self.esp_identifier.as_deref());
        w.many("profileUrl", &self.profile_urls);
        w.opt("screenName", self.screen_name.as_deref());
        w.many("displayName", &self.display_names);
        w.opt("additionalInfo", self.additional_info.as_deref());
        w.close();
    }

    fn validate(&self, path: &str) -> Result<()> {
        for e in &self.emails {
            check_email(&format!("{path}/email"), &e.value)?;
        }
        Ok(())
    }
}

/// Which element a [`UserDetails`] is written as. The XSD's `<intendedRecipient>` is
/// `<personOrUserReported>`'s sequence less `vehicleDescription`, `thirdPartyUserReported`
/// and `associatedAccount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserRole {
    Reported,
    IntendedRecipient,
}

/// `<personOrUserReported>` and `<intendedRecipient>`: an account on the platform. The
/// fields only `<personOrUserReported>` has are refused for an intended recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserDetails {
    /// The person behind the account, when known (`<personOrUserReportedPerson>` in
    /// `<personOrUserReported>`, `<intendedRecipientPerson>` in `<intendedRecipient>`).
    pub person: Option<Person>,
    /// `<vehicleDescription>`. Only in `<personOrUserReported>`; refused in
    /// `<intendedRecipient>`.
    pub vehicle_description: Option<String>,
    /// `<espIdentifier>`: the platform's account id.
    pub esp_identifier: Option<String>,
    /// `<espService>`: the product the account belongs to.
    pub esp_service: Option<String>,
    /// `<compromisedAccount>`.
    pub compromised_account: Option<bool>,
    /// `<screenName>`.
    pub screen_name: Option<String>,
    /// `<displayName>`*.
    pub display_names: Vec<String>,
    /// `<profileUrl>`*.
    pub profile_urls: Vec<String>,
    /// `<profileBio>`.
    pub profile_bio: Option<String>,
    /// `<ipCaptureEvent>`*.
    pub ip_capture_events: Vec<IpCaptureEvent>,
    /// `<deviceId>`*.
    pub device_ids: Vec<DeviceId>,
    /// `<thirdPartyUserReported>`. Only in `<personOrUserReported>`; refused in
    /// `<intendedRecipient>`.
    pub third_party_user_reported: Option<bool>,
    /// `<priorCTReports>`*: earlier CyberTipline report ids about this account.
    pub prior_ct_reports: Vec<String>,
    /// `<groupIdentifier>`.
    pub group_identifier: Option<String>,
    /// `<accountTemporarilyDisabled>`.
    pub account_temporarily_disabled: Option<bool>,
    /// `<accountPermanentlyDisabled>`.
    pub account_permanently_disabled: Option<bool>,
    /// `<estimatedLocation>`.
    pub estimated_location: Option<EstimatedLocation>,
    /// `<allEmailsReported>`.
    pub all_emails_reported: Option<bool>,
    /// `<associatedAccount>`*: the same person's other accounts. Only in
    /// `<personOrUserReported>`; refused in `<intendedRecipient>`.
    pub associated_accounts: Vec<AssociatedAccount>,
    /// `<additionalInfo>`.
    pub additional_info: Option<String>,
}

impl UserDetails {
    fn write(&self, w: &mut Writer, role: UserRole) {
        let (name, person_name) = match role {
            UserRole::Reported => ("personOrUserReported", "personOrUserReportedPerson"),
            UserRole::IntendedRecipient => ("intendedRecipient", "intendedRecipientPerson"),
        };
        // Refused by `validate` for an intended recipient; not written there in any case.
        let reported = role == UserRole::Reported;
        w.open(name);
        if let Some(p) = &self.person {
            p.write(w, person_name);
        }
        if reported {
            w.opt("vehicleDescription", self.vehicle_description.as_deref());
        }
        w.opt("espIdentifier", self.esp_identifier.as_deref());
        w.opt("espService", self.esp_service.as_deref());
        w.opt_bool("compromisedAccount", self.compromised_account);
        w.opt("screenName", self.screen_name.as_deref());
        w.many("displayName", &self.display_names);
        w.many("profileUrl", &self.profile_urls);
        w.opt("profileBio", self.profile_bio.as_deref());
        for e in &self.ip_capture_events {
            e.write(w);
        }
        for d in &self.device_ids {
            d.write(w);
        }
        if reported {
            w.opt_bool("thirdPartyUserReported", self.third_party_user_reported);
        }
        w.many("priorCTReports", &self.prior_ct_reports);
        w.opt("groupIdentifier", self.group_identifier.as_deref());
        w.opt_bool(
            "accountTemporarilyDisabled",
            self.account_temporarily_disabled,
        );
        w.opt_bool(
            "accountPermanentlyDisabled",
            self.account_permanently_disabled,
        );
        if let Some(l) = &self.estimated_location {
            w.open("estimatedLocation");
            w.opt("city", l.city.as_deref());
            w.opt("region", l.region.as_deref());
            w.opt("countryCode", l.country_code.as_deref());
            w.close();
        }
        w.opt_bool("allEmailsReported", self.all_emails_reported);
        if reported {
            for a in &self.associated_accounts {
                a.write(w);
            }
        }
        w.opt("additionalInfo", self.additional_info.as_deref());
        w.close();
    }

    fn validate(&self, path: &str, role: UserRole) -> Result<()> {
        if role == UserRole::IntendedRecipient {
            for (set, name) in [
                (self.vehicle_description.is_some(), "vehicleDescription"),
                (
                    self.third_party_user_reported.is_some(),
                    "thirdPartyUserReported",
                ),
                (!self.associated_accounts.is_empty(), "associatedAccount"),
            ] {
                if set {
                    return Err(Error::invalid(
                        format!("{path}/{name}"),
                        "not part of intendedRecipient in NCMEC's schema; \
                         only personOrUserReported has it",
                    ));
                }
            }
        }
        if let Some(p) = &self.person {
            p.validate(&format!("{path}/person"))?;
        }
        for (i, a) in self.associated_accounts.iter().enumerate() {
            a.validate(&format!("{path}/associatedAccount[{i}]"))?;
        }
        for e in &self.ip_capture_events {
            e.validate(&format!("{path}/ipCaptureEvent"))?;
        }
        for r in &self.prior_ct_reports {
            if r.is_empty() || !r.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::invalid(
                    format!("{path}/priorCTReports"),
                    format!("{r:?} is not a CyberTipline report number (digits only)"),
                ));
            }
        }
        Ok(())
    }
}

/// `<victim>`: a child the report is about, when known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Victim {
    /// `<victimPerson>`.
    pub person: Person,
    /// `<espIdentifier>`: the child's account id on the platform.
    pub esp_identifier: Option<String>,
    /// `<espService>`.
    pub esp_service: Option<String>,
    /// `<screenName>`.
    pub screen_name: Option<String>,
    /// `<displayName>`*.
    pub display_names: Vec<String>,
    /// `<profileUrl>`*.
    pub profile_urls: Vec<String>,
    /// `<additionalInfo>`.
    pub additional_info: Option<String>,
}

/// Why a report batches otherwise individual reports: `@reason` of `<batchedReport>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchedReportReason {
    /// "VIRAL_POTENTIAL_MEME", the XSD's only value.
    ViralPotentialMeme,
}

impl BatchedReportReason {
    /// The XSD's string.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchedReportReason::ViralPotentialMeme => "VIRAL_POTENTIAL_MEME",
        }
    }
}

/// The `<report>` document `/submit` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `<batchedReport reason="…"/>`: set when the report groups several otherwise individual
    /// reports. The XSD makes it an empty element whose required `reason` has one allowed
    /// value, so the reason is an enum rather than free text.
    pub batched_report_reason: Option<BatchedReportReason>,
    /// `<incidentSummary>`, required.
    pub incident_summary: IncidentSummary,
    /// `<internetDetails>`*.
    pub internet_details: Vec<InternetDetail>,
    /// `<lawEnforcement>`.
    pub law_enforcement: Option<LawEnforcement>,
    /// `<reporter>`, required.
    pub reporter: Reporter,
    /// `<personOrUserReported>`.
    pub person_or_user_reported: Option<UserDetails>,
    /// `<intendedRecipient>`*: without `vehicleDescription`, `thirdPartyUserReported` and
    /// `associatedAccount`, which [`Report::validate`] refuses here.
    pub intended_recipients: Vec<UserDetails>,
    /// `<victim>`*.
    pub victims: Vec<Victim>,
    /// `<additionalInfo>`.
    pub additional_info: Option<String>,
}

impl Report {
    /// A report with the required parts and nothing else.
    pub fn new(
        incident_type: IncidentType,
        incident_date_time: Timestamp,
        reporting_person: Person,
    ) -> Report {
        Report {
            batched_report_reason: None,
            incident_summary: IncidentSummary {
                incident_type,
                platform: None,
                escalate_to_high_priority: None,
                report_annotations: ReportAnnotations::default(),
                incident_date_time,
                incident_date_time_description: None,
            },
            internet_details: Vec::new(),
            law_enforcement: None,
            reporter: Reporter {
                reporting_person,
                ..Reporter::default()
            },
            person_or_user_reported: None,
            intended_recipients: Vec::new(),
            victims: Vec::new(),
            additional_info: None,
        }
    }

    /// Checks the rules NCMEC's schema and documentation state, at `now`.
    pub fn validate(&self, now: Timestamp) -> Result<()> {
        let s = &self.incident_summary;
        if s.incident_date_time > now.plus_seconds(INCIDENT_CLOCK_SKEW_SECONDS) {
            return Err(Error::invalid(
                "report/incidentSummary/incidentDateTime",
                format!("{} is in the future (now {now})", s.incident_date_time),
            ));
        }
        if let Some(e) = &s.escalate_to_high_priority {
            let n = e.chars().count();
            if n > MAX_ESCALATE_CHARS {
                return Err(Error::invalid(
                    "report/incidentSummary/escalateToHighPriority",
                    format!("{n} characters; NCMEC takes at most {MAX_ESCALATE_CHARS}"),
                ));
            }
            if e.trim().is_empty() {
                return Err(Error::invalid(
                    "report/incidentSummary/escalateToHighPriority",
                    "empty; leave it out instead",
                ));
            }
        }
        for (i, d) in self.internet_details.iter().enumerate() {
            d.validate(&format!("report/internetDetails[{i}]"))?;
        }
        if let Some(le) = &self.law_enforcement {
            if le.agency_name.trim().is_empty() {
                return Err(Error::invalid(
                    "report/lawEnforcement/agencyName",
                    "required when lawEnforcement is given",
                ));
            }
            if let Some(o) = &le.officer_contact {
                o.validate("report/lawEnforcement/officerContact")?;
            }
        }
        let rp = &self.reporter.reporting_person;
        if rp.emails.is_empty() {
            return Err(Error::invalid(
                "report/reporter/reportingPerson/email",
                "required: NCMEC writes to the reporting person",
            ));
        }
        rp.validate("report/reporter/reportingPerson")?;
        if let Some(c) = &self.reporter.contact_person {
            c.validate("report/reporter/contactPerson")?;
        }
        if let Some(u) = &self.person_or_user_reported {
            u.validate("report/personOrUserReported", UserRole::Reported)?;
        }
        for (i, r) in self.intended_recipients.iter().enumerate() {
            r.validate(
                &format!("report/intendedRecipient[{i}]"),
                UserRole::IntendedRecipient,
            )?;
        }
        for (i, v) in self.victims.iter().enumerate() {
            v.person
                .validate(&format!("report/victim[{i}]/victimPerson"))?;
        }
        Ok(())
    }

    /// Validates at `now`, then writes the report in the XSD's element order.
    pub fn to_xml(&self, now: Timestamp) -> Result<String> {
        self.validate(now)?;
        let mut w = Writer::new();
        w.open("report");
        if let Some(reason) = self.batched_report_reason {
            w.empty_with("batchedReport", &[("reason", Some(reason.as_str().into()))]);
        }
        let s = &self.incident_summary;
        w.open("incidentSummary");
        w.text("incidentType", s.incident_type.as_str());
        w.opt("platform", s.platform.as_deref());
        w.opt(
            "escalateToHighPriority",
            s.escalate_to_high_priority.as_deref(),
        );
        let a = &s.report_annotations;
        if a.any() {
            w.open("reportAnnotations");
            for (set, name) in [
                (a.sextortion, "sextortion"),
                (a.csam_solicitation, "csamSolicitation"),
                (a.minor_to_minor_interaction, "minorToMinorInteraction"),
                (a.spam, "spam"),
                (a.sadistic_online_exploitation, "sadisticOnlineExploitation"),
            ] {
                if set {
                    w.empty(name);
                }
            }
            w.close();
        }
        w.text("incidentDateTime", &s.incident_date_time.to_string());
        w.opt(
            "incidentDateTimeDescription",
            s.incident_date_time_description.as_deref(),
        );
        w.close();
        for d in &self.internet_details {
            d.write(&mut w);
        }
        if let Some(le) = &self.law_enforcement {
            w.open("lawEnforcement");
            w.text("agencyName", &le.agency_name);
            w.opt("caseNumber", le.case_number.as_deref());
            if let Some(o) = &le.officer_contact {
                o.write(&mut w, "officerContact");
            }
            w.opt_bool("reportedToLe", le.reported_to_le);
            w.opt_bool(
                "servedLegalProcessDomestic",
                le.served_legal_process_domestic,
            );
            w.opt_bool(
                "servedLegalProcessInternational",
                le.served_legal_process_international,
            );
            w.close();
        }
        let r = &self.reporter;
        w.open("reporter");
        r.reporting_person.write(&mut w, "reportingPerson");
        if let Some(c) = r.contact_person.as_ref().filter(|c| !c.is_empty()) {
            c.write(&mut w, "contactPerson");
        }
        w.opt("companyTemplate", r.company_template.as_deref());
        w.opt("termsOfService", r.terms_of_service.as_deref());
        w.opt("legalURL", r.legal_url.as_deref());
        w.close();
        if let Some(u) = &self.person_or_user_reported {
            u.write(&mut w, UserRole::Reported);
        }
        for u in &self.intended_recipients {
            u.write(&mut w, UserRole::IntendedRecipient);
        }
        for v in &self.victims {
            w.open("victim");
            v.person.write(&mut w, "victimPerson");
            w.opt("espIdentifier", v.esp_identifier.as_deref());
            w.opt("espService", v.esp_service.as_deref());
            w.opt("screenName", v.screen_name.as_deref());
            w.many("displayName", &v.display_names);
            w.many("profileUrl", &v.profile_urls);
            w.opt("additionalInfo", v.additional_info.as_deref());
            w.close();
        }
        w.opt("additionalInfo", self.additional_info.as_deref());
        w.close();
        let xml = w.finish()?;
        if xml.len() > MAX_REPORT_XML_BYTES {
            return Err(Error::invalid(
                "report",
                format!(
                    "{} bytes of XML; at most {MAX_REPORT_XML_BYTES} (put long text in a file)",
                    xml.len()
                ),
            ));
        }
        Ok(xml)
    }
}

/// `<fileRelevance>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRelevance {
    /// "Reported": the file is the apparent child sexual abuse material being reported.
    Reported,
    /// "Supplemental Reported": context (a profile picture, a chat log).
    SupplementalReported,
}

impl FileRelevance {
    /// The XSD's string.
    pub fn as_str(self) -> &'static str {
        match self {
            FileRelevance::Reported => "Reported",
            FileRelevance::SupplementalReported => "Supplemental Reported",
        }
    }
}

/// `<industryClassification>`: the industry categorisation scheme's class (A1, A2, B1, B2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndustryClassification {
    /// "A1".
    A1,
    /// "A2".
    A2,
    /// "B1".
    B1,
    /// "B2".
    B2,
}

impl IndustryClassification {
    /// The XSD's string.
    pub fn as_str(self) -> &'static str {
        match self {
            IndustryClassification::A1 => "A1",
            IndustryClassification::A2 => "A2",
            IndustryClassification::B1 => "B1",
            IndustryClassification::B2 => "B2",
        }
    }
}

/// `<fileAnnotations>`: flags written as empty elements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileAnnotations {
    /// `<animeDrawingVirtualHentai/>`.
    pub anime_drawing_virtual_hentai: bool,
    /// `<potentialMeme/>`.
    pub potential_meme: bool,
    /// `<viral/>`.
    pub viral: bool,
    /// `<possibleSelfProduction/>`.
    pub possible_self_production: bool,
    /// `<physicalHarm/>`.
    pub physical_harm: bool,
    /// `<violenceGore/>`.
    pub violence_gore: bool,
    /// `<bestiality/>`.
    pub bestiality: bool,
    /// `<liveStreaming/>`.
    pub live_streaming: bool,
    /// `<infant/>`.
    pub infant: bool,
    /// `<generativeAi/>`.
    pub generative_ai: bool,
}

impl FileAnnotations {
    fn flags(&self) -> [(bool, &'static str); 10] {
        [
            (
                self.anime_drawing_virtual_hentai,
                "animeDrawingVirtualHentai",
            ),
            (self.potential_meme, "potentialMeme"),
            (self.viral, "viral"),
            (self.possible_self_production, "possibleSelfProduction"),
            (self.physical_harm, "physicalHarm"),
            (self.violence_gore, "violenceGore"),
            (self.bestiality, "bestiality"),
            (self.live_streaming, "liveStreaming"),
            (self.infant, "infant"),
            (self.generative_ai, "generativeAi"),
        ]
    }
}

/// `<originalFileHash hashType="…">`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash {
    /// `@hashType` (for example `MD5`, `SHA1`, `PDQ`).
    pub hash_type: String,
    /// The hash as the platform computed it.
    pub value: String,
}

/// `<details type="…">`: name/value pairs (EXIF, metadata).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// `@type`: `EXIF` or `HASH`, the XSD's only values ([`FileDetails::validate`] refuses
    /// others).
    pub kind: Option<String>,
    /// `<nameValuePair><name/><value/></nameValuePair>`+: the XSD requires at least one.
    pub pairs: Vec<(String, String)>,
}

/// The XSD's metadataTypes, the values of `<details type="…">`.
const DETAILS_TYPES: [&str; 2] = ["EXIF", "HASH"];

/// The `<fileDetails>` document `/fileinfo` takes, less `reportId` and `fileId`, which the
/// filer fills in from NCMEC's answers ([`FileDetails::to_xml`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileDetails {
    /// `<fileName>`: the name the file is known by in the report; defaults to the upload's.
    pub file_name: Option<String>,
    /// `<originalFileName>`: the name the user gave it.
    pub original_file_name: Option<String>,
    /// `<uploadedToEspTimestamp>`.
    pub uploaded_to_esp_timestamp: Option<Timestamp>,
    /// `<locationOfFile>`: where it was found (a URL).
    pub location_of_file: Option<String>,
    /// `<fileViewedByEsp>`: a person at the platform looked at it.
    pub file_viewed_by_esp: Option<bool>,
    /// `<exifViewedByEsp>`.
    pub exif_viewed_by_esp: Option<bool>,
    /// `<publiclyAvailable>`.
    pub publicly_available: Option<bool>,
    /// `<fileRelevance>`.
    pub file_relevance: Option<FileRelevance>,
    /// `<fileAnnotations>`, written only when a flag is set.
    pub file_annotations: FileAnnotations,
    /// `<industryClassification>`: only for `Reported` files.
    pub industry_classification: Option<IndustryClassification>,
    /// `<originalFileHash>`*.
    pub original_file_hashes: Vec<FileHash>,
    /// `<ipCaptureEvent>`: where the file came from.
    pub ip_capture_event: Option<IpCaptureEvent>,
    /// `<deviceId>`*.
    pub device_ids: Vec<DeviceId>,
    /// `<details>`*.
    pub details: Vec<Details>,
    /// `<additionalInfo>`*.
    pub additional_info: Vec<String>,
}

impl FileDetails {
    /// Checks the rules: an industry classification only with `Reported` relevance, valid
    /// IP addresses, hashes with a type and a value, details with at least one pair and a
    /// type the XSD allows.
    pub fn validate(&self) -> Result<()> {
        if self.industry_classification.is_some()
            && self.file_relevance != Some(FileRelevance::Reported)
        {
            return Err(Error::invalid(
                "fileDetails/industryClassification",
                "only for files whose fileRelevance is Reported",
            ));
        }
        if let Some(e) = &self.ip_capture_event {
            e.validate("fileDetails/ipCaptureEvent")?;
        }
        for h in &self.original_file_hashes {
            if h.hash_type.trim().is_empty() || h.value.trim().is_empty() {
                return Err(Error::invalid(
                    "fileDetails/originalFileHash",
                    "needs both a hashType and a value",
                ));
            }
        }
        for (i, d) in self.details.iter().enumerate() {
            let path = format!("fileDetails/details[{i}]");
            if d.pairs.is_empty() {
                return Err(Error::invalid(
                    format!("{path}/nameValuePair"),
                    "at least one is required; leave the details out instead",
                ));
            }
            if let Some(k) = d.kind.as_deref().filter(|k| !DETAILS_TYPES.contains(k)) {
                return Err(Error::invalid(
                    format!("{path}@type"),
                    format!("{k:?} is not one of NCMEC's metadata types (EXIF, HASH)"),
                ));
            }
        }
        Ok(())
    }

    /// Validates, then writes `<fileDetails>` for the file `file_id` of report `report_id`
    /// in the XSD's element order. `upload_name` is the `fileName` when none is set.
    pub fn to_xml(&self, report_id: &str, file_id: &str, upload_name: &str) -> Result<String> {
        self.validate()?;
        let mut w = Writer::new();
        w.open("fileDetails");
        w.text("reportId", report_id);
        w.text("fileId", file_id);
        w.text("fileName", self.file_name.as_deref().unwrap_or(upload_name));
        w.opt("originalFileName", self.original_file_name.as_deref());
        w.opt(
            "uploadedToEspTimestamp",
            self.uploaded_to_esp_timestamp
                .map(|t| t.to_string())
                .as_deref(),
        );
        w.opt("locationOfFile", self.location_of_file.as_deref());
        w.opt_bool("fileViewedByEsp", self.file_viewed_by_esp);
        w.opt_bool("exifViewedByEsp", self.exif_viewed_by_esp);
        w.opt_bool("publiclyAvailable", self.publicly_available);
        w.opt(
            "fileRelevance",
            self.file_relevance.map(FileRelevance::as_str),
        );
        let flags = self.file_annotations.flags();
        if flags.iter().any(|(set, _)| *set) {
            w.open("fileAnnotations");
            for (set, name) in flags {
                if set {
                    w.empty(name);
                }
            }
            w.close();
        }
        w.opt(
            "industryClassification",
            self.industry_classification
                .map(IndustryClassification::as_str),
        );
        for h in &self.original_file_hashes {
            w.text_with(
                "originalFileHash",
                &[("hashType", Some(h.hash_type.clone()))],
                &h.value,
            );
        }
        if let Some(e) = &self.ip_capture_event {
            e.write(&mut w);
        }
        for d in &self.device_ids {
            d.write(&mut w);
        }
        for d in &self.details {
            w.open_with("details", &[("type", d.kind.clone())]);
            for (name, value) in &d.pairs {
                w.open("nameValuePair");
                w.text("name", name);
                w.text("value", value);
                w.close();
            }
            w.close();
        }
        w.many("additionalInfo", &self.additional_info);
        w.close();
        w.finish()
    }
}

/// Whether `value` passes the e-mail check every `<email>` of a report gets here: one `@`
/// with text on both sides, no whitespace. A plausibility check (NCMEC checks more) that
/// catches an empty or swapped field before a round trip; configuration checks the
/// reporter's address with it at startup, so such a typo stops the server rather than every
/// filing.
pub fn is_email_address(value: &str) -> bool {
    match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !value.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

fn check_email(path: &str, value: &str) -> Result<()> {
    if is_email_address(value) {
        Ok(())
    } else {
        Err(Error::invalid(
            path,
            format!("{value:?} is not an email address"),
        ))
    }
}

/// `YYYY-MM-DD`.
fn check_date(path: &str, value: &str) -> Result<()> {
    let b = value.as_bytes();
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            path,
            format!("{value:?} is not a date as YYYY-MM-DD"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter() -> Person {
        Person {
            first_name: Some("Test".into()),
            last_name: Some("Reporter".into()),
            emails: vec![Contact::new("reporter@example.com")],
            ..Person::default()
        }
    }

    const NOW: Timestamp = Timestamp(1_780_000_000);

    #[test]
    fn minimal_report_writes_required_elements_in_order() {
        let r = Report::new(
            IncidentType::OnlineEnticement,
            NOW.plus_seconds(-60),
            reporter(),
        );
        let xml = r.to_xml(NOW).unwrap();
        let i = |s: &str| xml.find(s).unwrap();
        assert!(i("<incidentSummary>") < i("<reporter>"));
        assert!(i("<incidentType>") < i("<incidentDateTime>"));
        assert!(xml.contains("Online Enticement of Children for Sexual Acts"));
    }

    #[test]
    fn future_incident_time_is_refused() {
        let r = Report::new(
            IncidentType::OnlineEnticement,
            NOW.plus_seconds(3600),
            reporter(),
        );
        let err = r.to_xml(NOW).unwrap_err().to_string();
        assert!(err.contains("incidentDateTime"), "{err}");
    }

    #[test]
    fn reporting_person_needs_an_email() {
        let r = Report::new(IncidentType::OnlineEnticement, NOW, Person::default());
        let err = r.to_xml(NOW).unwrap_err().to_string();
        assert!(err.contains("reportingPerson/email"), "{err}");
    }

    #[test]
    fn escalation_text_is_capped() {
        let mut r = Report::new(IncidentType::OnlineEnticement, NOW, reporter());
        r.incident_summary.escalate_to_high_priority = Some("x".repeat(MAX_ESCALATE_CHARS));
        r.to_xml(NOW).unwrap();
        r.incident_summary.escalate_to_high_priority = Some("é".repeat(MAX_ESCALATE_CHARS + 1));
        let err = r.to_xml(NOW).unwrap_err().to_string();
        assert!(err.contains("escalateToHighPriority"), "{err}");
    }

    #[test]
    fn industry_classification_only_for_reported_files() {
        let mut d = FileDetails {
            industry_classification: Some(IndustryClassification::A1),
            file_relevance: Some(FileRelevance::SupplementalReported),
            ..FileDetails::default()
        };
        let err = d.to_xml("1", "f", "a.png").unwrap_err().to_string();
        assert!(err.contains("industryClassification"), "{err}");
        d.file_relevance = None;
        assert!(d.to_xml("1", "f", "a.png").is_err());
        d.file_relevance = Some(FileRelevance::Reported);
        let xml = d.to_xml("1", "f", "a.png").unwrap();
        assert!(xml.contains("<industryClassification>A1</industryClassification>"));
    }

    #[test]
    fn bad_ip_and_prior_report_are_refused() {
        let mut r = Report::new(IncidentType::ChildPornography, NOW, reporter());
        r.person_or_user_reported = Some(UserDetails {
            ip_capture_events: vec![IpCaptureEvent {
                ip_address: "300.1.1.1".into(),
                event_name: Some(EventName::Login),
                date_time: None,
                possible_proxy: None,
                port: None,
            }],
            ..UserDetails::default()
        });
        assert!(r.to_xml(NOW).unwrap_err().to_string().contains("ipAddress"));
        r.person_or_user_reported = Some(UserDetails {
            prior_ct_reports: vec!["12a".into()],
            ..UserDetails::default()
        });
        assert!(r
            .to_xml(NOW)
            .unwrap_err()
            .to_string()
            .contains("priorCTReports"));
    }

    #[test]
    fn third_party_hosted_content_is_an_attribute() {
        let mut r = Report::new(IncidentType::ChildPornography, NOW, reporter());
        r.internet_details = vec![InternetDetail::WebPage {
            urls: vec!["https://example.com/a".into()],
            additional_info: None,
            third_party_hosted_content: Some(true),
        }];
        let xml = r.to_xml(NOW).unwrap();
        assert!(
            xml.contains(
                "<webPageIncident thirdPartyHostedContent=\"true\">\
                 <url>https://example.com/a</url></webPageIncident>"
            ),
            "{xml}"
        );
        assert!(!xml.contains("<thirdPartyHostedContent"), "{xml}");
    }

    #[test]
    fn batched_report_is_empty_with_its_reason() {
        let mut r = Report::new(IncidentType::ChildPornography, NOW, reporter());
        r.batched_report_reason = Some(BatchedReportReason::ViralPotentialMeme);
        let xml = r.to_xml(NOW).unwrap();
        assert!(
            xml.contains(
                "<report><batchedReport reason=\"VIRAL_POTENTIAL_MEME\"/><incidentSummary>"
            ),
            "{xml}"
        );
    }

    #[test]
    fn associated_account_has_its_type_and_children() {
        let mut r = Report::new(IncidentType::ChildPornography, NOW, reporter());
        r.person_or_user_reported = Some(UserDetails {
            associated_accounts: vec![AssociatedAccount {
                esp_identifier: Some("user-9".into()),
                platform: Some("Example Pay".into()),
                ..AssociatedAccount::new(AssociatedAccountType::ParentGuardian)
            }],
            additional_info: Some("x".into()),
            ..UserDetails::default()
        });
        let xml = r.to_xml(NOW).unwrap();
        assert!(
            xml.contains(
                "<associatedAccount type=\"Parent/Guardian\"><platform>Example Pay</platform>\
                 <espIdentifier>user-9</espIdentifier></associatedAccount><additionalInfo>"
            ),
            "{xml}"
        );
        r.person_or_user_reported
            .as_mut()
            .unwrap()
            .associated_accounts[0]
            .emails = vec![Contact::new("not an email")];
        let err = r.to_xml(NOW).unwrap_err().to_string();
        assert!(err.contains("associatedAccount[0]/email"), "{err}");
    }

    #[test]
    fn intended_recipient_refuses_what_only_the_reported_user_has() {
        let recipient = UserDetails {
            esp_identifier: Some("user-2".into()),
            additional_info: Some("x".into()),
            ..UserDetails::default()
        };
        let mut r = Report::new(IncidentType::OnlineEnticement, NOW, reporter());
        r.intended_recipients = vec![recipient.clone()];
        let xml = r.to_xml(NOW).unwrap();
        assert!(xml.contains(
            "<intendedRecipient><espIdentifier>user-2</espIdentifier>\
             <additionalInfo>x</additionalInfo></intendedRecipient>"
        ));
        for (bad, name) in [
            (
                UserDetails {
                    vehicle_description: Some("car".into()),
                    ..recipient.clone()
                },
                "vehicleDescription",
            ),
            (
                UserDetails {
                    third_party_user_reported: Some(false),
                    ..recipient.clone()
                },
                "thirdPartyUserReported",
            ),
            (
                UserDetails {
                    associated_accounts: vec![AssociatedAccount::new(
                        AssociatedAccountType::Linked,
                    )],
                    ..recipient.clone()
                },
                "associatedAccount",
            ),
        ] {
            r.intended_recipients = vec![bad.clone()];
            let err = r.to_xml(NOW).unwrap_err().to_string();
            assert!(
                err.contains(&format!("report/intendedRecipient[0]/{name}")),
                "{err}"
            );
            // The same fields are the reported user's to have.
            r.intended_recipients.clear();
            r.person_or_user_reported = Some(bad);
            let xml = r.to_xml(NOW).unwrap();
            assert!(xml.contains(&format!("<{name}")), "{xml}");
        }
    }

    #[test]
    fn contact_person_and_officer_have_no_age() {
        let contact = ContactPerson {
            first_name: Some("Contact".into()),
            emails: vec![Contact::new("contact@example.com")],
            ..ContactPerson::default()
        };
        let mut r = Report::new(IncidentType::ChildPornography, NOW, reporter());
        r.reporter.contact_person = Some(contact.clone());
        r.law_enforcement = Some(LawEnforcement {
            agency_name: "Example Police".into(),
            officer_contact: Some(contact),
            ..LawEnforcement::default()
        });
        let xml = r.to_xml(NOW).unwrap();
        for name in ["contactPerson", "officerContact"] {
            assert!(
                xml.contains(&format!(
                    "<{name}><firstName>Contact</firstName>\
                     <email>contact@example.com</email></{name}>"
                )),
                "{xml}"
            );
        }
        r.law_enforcement.as_mut().unwrap().officer_contact = Some(ContactPerson {
            emails: vec![Contact::new("nope")],
            ..ContactPerson::default()
        });
        let err = r.to_xml(NOW).unwrap_err().to_string();
        assert!(err.contains("officerContact/email"), "{err}");
    }

    #[test]
    fn details_need_a_pair_and_an_xsd_type() {
        let mut d = FileDetails {
            details: vec![Details {
                kind: Some("EXIF".into()),
                pairs: Vec::new(),
            }],
            ..FileDetails::default()
        };
        let err = d.to_xml("1", "f", "a.png").unwrap_err().to_string();
        assert!(err.contains("details[0]/nameValuePair"), "{err}");
        d.details[0].pairs = vec![("Make".into(), "Example".into())];
        for ok in [Some("EXIF"), Some("HASH"), None] {
            d.details[0].kind = ok.map(String::from);
            d.to_xml("1", "f", "a.png").unwrap();
        }
        d.details[0].kind = Some("exif".into());
        let err = d.to_xml("1", "f", "a.png").unwrap_err().to_string();
        assert!(err.contains("details[0]@type"), "{err}");
    }

    #[test]
    fn incident_types_are_the_eight_official_strings() {
        let all: Vec<&str> = IncidentType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(all.len(), 8);
        assert!(all.contains(&"Unsolicited Obscene Material Sent to a Child"));
        assert!(all.contains(&"Child Pornography (possession, manufacture, and distribution)"));
    }
}
