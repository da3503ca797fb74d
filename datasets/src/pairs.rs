//! Minimal pairs: an acceptable and an unacceptable sentence that differ in one grammatical
//! point (BLiMP, Warstadt et al. 2020), read as JSON Lines with BLiMP's fields from the named
//! set `blimp`, a file or a folder of files.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{DataError, Result};
use crate::named::{NamedFile, ReadAs, checked_path, gh};

/// One minimal pair and where it belongs.
#[derive(Debug, Clone, PartialEq)]
pub struct MinimalPair {
    /// The acceptable sentence.
    pub good: String,
    /// The unacceptable one.
    pub bad: String,
    /// Broad field (BLiMP: morphology, syntax, syntax-semantics, semantics).
    pub field: String,
    /// Phenomenon (BLiMP's `linguistics_term`).
    pub phenomenon: String,
    /// Paradigm (BLiMP's `UID`; a user file's name when absent).
    pub paradigm: String,
}

/// The 67 paradigm files of BLiMP, 1,000 pairs each.
pub const BLIMP: &[NamedFile] = &[
    NamedFile {
        path: "blimp/adjunct_island.jsonl",
        sha256: "ecc71c452516de03deeb9262b4203e45220dc52727327a08eef07c79c01eac8b",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/adjunct_island.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/anaphor_gender_agreement.jsonl",
        sha256: "fd7d6e47196fa1310a251d3aa88ae9a62bb64d3cec35fc02617229d5799767e1",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/anaphor_gender_agreement.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/anaphor_number_agreement.jsonl",
        sha256: "05c16b8bfe4feb5b3552dc2c53d1742ce0c91d9a1c896684335bdddd4373cc9b",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/anaphor_number_agreement.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/animate_subject_passive.jsonl",
        sha256: "245e91961cf597150244c3945c6d0033e691b27ba6cf298c62920d355426e70c",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/animate_subject_passive.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/animate_subject_trans.jsonl",
        sha256: "a7bffeda200f648c33dd215d91d8f5756fcd1e3f410bab467f1ed9235f215850",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/animate_subject_trans.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/causative.jsonl",
        sha256: "2e1006cc24094a3049586888105b22181d77e09e11dea65a326b49977bb366f1",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/causative.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/complex_NP_island.jsonl",
        sha256: "1c92472731dd9a21eb222d64bee756042a3763c3797b5283d5b84ab8e3cbb74c",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/complex_NP_island.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/coordinate_structure_constraint_complex_left_branch.jsonl",
        sha256: "47e0e04efeb320449a8eb2ac722b895041a8609580fec2880dbc719f50fba194",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/coordinate_structure_constraint_complex_left_branch.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/coordinate_structure_constraint_object_extraction.jsonl",
        sha256: "d01c27a7a893f3ec071a7913efa504d297671d86a987f26ddb565de914db2fd7",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/coordinate_structure_constraint_object_extraction.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/determiner_noun_agreement_1.jsonl",
        sha256: "f48065fd760d0fd1a895012860d38bdf3c2ac115cd221e521684cc430c0f1855",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/determiner_noun_agreement_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/determiner_noun_agreement_2.jsonl",
        sha256: "8ae7eff7c7bd384ff5ef3113984834f4d78b34559203aa9d5cb14ea8394291a9",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/determiner_noun_agreement_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/determiner_noun_agreement_irregular_1.jsonl",
        sha256: "4f350e88db9e29e53ae96f1f0b5991c7809fd4fd403190907330b721e1e6e264",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/determiner_noun_agreement_irregular_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/determiner_noun_agreement_irregular_2.jsonl",
        sha256: "d688af0ccd0614d24a936e0929276784f37554f3ad3e247c3bade8dcaa9099df",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/determiner_noun_agreement_irregular_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/determiner_noun_agreement_with_adj_2.jsonl",
        sha256: "8d2828d7dfbfc3f7191024514060fedb033ea2e232304f63448c33051a85d2b3",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/determiner_noun_agreement_with_adj_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/determiner_noun_agreement_with_adj_irregular_1.jsonl",
        sha256: "1f4c6e42a48f4220afec629679641479feac3883cd7fa346d9e9e129cd7e8f55",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/determiner_noun_agreement_with_adj_irregular_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/determiner_noun_agreement_with_adj_irregular_2.jsonl",
        sha256: "aa3f297a7ce0c03b5fc00458834f89e54eb855973be098497f766a390b4bc669",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/determiner_noun_agreement_with_adj_irregular_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/determiner_noun_agreement_with_adjective_1.jsonl",
        sha256: "2c3de4e7b7aea499fb7cf1b23b9c3b63662289880f991b9ffabe5ceb94cf7430",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/determiner_noun_agreement_with_adjective_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/distractor_agreement_relational_noun.jsonl",
        sha256: "37c1553f4c6594b162256edce0f6b40bad1898b311c8aaa69605b526b6494a34",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/distractor_agreement_relational_noun.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/distractor_agreement_relative_clause.jsonl",
        sha256: "854728b6db8f23f12583f7332b654835351eaedb50783e6f2a3bf6c101b8c422",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/distractor_agreement_relative_clause.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/drop_argument.jsonl",
        sha256: "e262339a262a57a8f56dc41941ee1dc32c62eb97054b27d33cd8c356a6e62064",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/drop_argument.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/ellipsis_n_bar_1.jsonl",
        sha256: "3cc0bcf91631a4476ce573ea9dbf9627d52efbe071c26019e2c2448b68769d09",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/ellipsis_n_bar_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/ellipsis_n_bar_2.jsonl",
        sha256: "3dfc2b378ea4867186917ec9cce5ce927e4d3bb6addf018bc31b870dd2aa8474",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/ellipsis_n_bar_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/existential_there_object_raising.jsonl",
        sha256: "3781bfd54ec1208fc634f4d365189f948ec246526a7345b5148dd3ab6023ff4f",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/existential_there_object_raising.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/existential_there_quantifiers_1.jsonl",
        sha256: "4bd0f6dee3c1824b51b0dafb9fce2b00933e8053fcd4a7b99b6202e1b8b49f9e",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/existential_there_quantifiers_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/existential_there_quantifiers_2.jsonl",
        sha256: "b1a80f4ebebae90a90927259f95b680059020e6bb4e38e64a41eb8e53bc3f617",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/existential_there_quantifiers_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/existential_there_subject_raising.jsonl",
        sha256: "7c6f5b13225f73a777755c1948beef5cfa31d135ae8a0e7ba8853d256fbece23",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/existential_there_subject_raising.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/expletive_it_object_raising.jsonl",
        sha256: "15ed3a52c978ecfe5eda7f64b0304b5bd133439cccb2c97fde20834f39874c93",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/expletive_it_object_raising.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/inchoative.jsonl",
        sha256: "d9389a7130ca84c6f920c9d892cc60c1b20f378d28e7041b1c53ae589fc84f1d",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/inchoative.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/intransitive.jsonl",
        sha256: "9af9f3f30c891cd21623922b62fd97685552b4ae94a6cfd5617a5f0cb0f731b3",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/intransitive.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/irregular_past_participle_adjectives.jsonl",
        sha256: "5e490be0723989499391ac14d11b3bb6677f4b470514486b2db3fbfe76d56b3c",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/irregular_past_participle_adjectives.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/irregular_past_participle_verbs.jsonl",
        sha256: "75a990117c1a403d3b479e0fbe170f6919c2408def738ffcea8c62b49b70a555",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/irregular_past_participle_verbs.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/irregular_plural_subject_verb_agreement_1.jsonl",
        sha256: "0066174143671bffa54232d89254d14221afab666273edfefdfb625fbb75e226",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/irregular_plural_subject_verb_agreement_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/irregular_plural_subject_verb_agreement_2.jsonl",
        sha256: "9b22db814e7b7251f4abafe8beb9616f2f46eaa58f7cdb701cbc737cc8f1a124",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/irregular_plural_subject_verb_agreement_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/left_branch_island_echo_question.jsonl",
        sha256: "7dadbe3c5a5ceadb78b9408807ac88230ddd748abfe8de8121f064e2bce94ad8",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/left_branch_island_echo_question.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/left_branch_island_simple_question.jsonl",
        sha256: "e2a64b8a1b7b8d94f931018cf9325836e9c79953a01379233da255eac5e8cd71",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/left_branch_island_simple_question.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/matrix_question_npi_licensor_present.jsonl",
        sha256: "657c9d6e6d50a9cd651881fcbc57cef2fd998611f6f53158ed05e48822fcd2b5",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/matrix_question_npi_licensor_present.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/npi_present_1.jsonl",
        sha256: "9aa85dc5c2b0d85ea51f21db50d6d327ab5b45d1669e386d54b1360d3ac954af",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/npi_present_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/npi_present_2.jsonl",
        sha256: "52fcfa230a40ae27998273cc08ecd062aad17025c92389df3404a85ed519909b",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/npi_present_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/only_npi_licensor_present.jsonl",
        sha256: "475c6595187a32e4dcfb868d3db90394e89669a94a9312ebd60f88dad1665f1c",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/only_npi_licensor_present.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/only_npi_scope.jsonl",
        sha256: "ca1f0671643e37936515f02125036bc2904ab9b35c4689b0e7a3ea3914e571f6",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/only_npi_scope.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/passive_1.jsonl",
        sha256: "e9374307bca5c24e9df18597a0859f7fb5ca4cfe5f136ec894d1ba69f4c90116",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/passive_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/passive_2.jsonl",
        sha256: "4d49e438185bed4122a252dd9ee69bc8eccb2fe6c1b09ccc78198fd925fed8c5",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/passive_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/principle_A_c_command.jsonl",
        sha256: "74c8111666542c797dee1c38c9e432b0b65751dfa0faa51874a990f2cbfc76fc",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/principle_A_c_command.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/principle_A_case_1.jsonl",
        sha256: "7efb5246fe315dc2cf56b80739783cffcddee9e52650716cf5aa0f6987f7644d",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/principle_A_case_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/principle_A_case_2.jsonl",
        sha256: "5de6db4c21a8433bc1f1030e81d5ee151efce02078460f7de7ca5e9566afd914",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/principle_A_case_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/principle_A_domain_1.jsonl",
        sha256: "2276dc35a51396c7d11a401e378e0f4b31cd10d7916c73e9a361703cb96eddc5",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/principle_A_domain_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/principle_A_domain_2.jsonl",
        sha256: "9d14e5ae911fb8ddf571484ef2d6a6e6a053765c1c6d34253aec2c11f7d7306a",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/principle_A_domain_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/principle_A_domain_3.jsonl",
        sha256: "a0d66b9d8541ab1df08f629161c6c4e8bca3aa2693eaa342edd2097e6b579bdd",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/principle_A_domain_3.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/principle_A_reconstruction.jsonl",
        sha256: "65dc403c4d6e9a609f2c4cc2ec6c8baa05cf6fce89b920a816b0d9932204b2a3",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/principle_A_reconstruction.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/regular_plural_subject_verb_agreement_1.jsonl",
        sha256: "1a18d94062c8e792c0a200a3b00dff0e051a92bb084c05e9b5e5c73bee32a620",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/regular_plural_subject_verb_agreement_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/regular_plural_subject_verb_agreement_2.jsonl",
        sha256: "e5b4668811e63b00ac4c9569cb9553281a39c21df43256905ad78e59ae24942c",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/regular_plural_subject_verb_agreement_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/sentential_negation_npi_licensor_present.jsonl",
        sha256: "c43405aca13ba4aa6ad87f9b051e4ba5fc458f24e683cfe0af23e6e09ec7268b",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/sentential_negation_npi_licensor_present.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/sentential_negation_npi_scope.jsonl",
        sha256: "6c341ccc39c94bea45c0412986751bf2f6eca48626728e30e23d2b6a22c8b949",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/sentential_negation_npi_scope.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/sentential_subject_island.jsonl",
        sha256: "a286b67cc5912aafeb06750b38923abf3338786ffa4309e0a6a07b1dbe2444bd",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/sentential_subject_island.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/superlative_quantifiers_1.jsonl",
        sha256: "bebc5c5ff28cf226cc35293c60cde1fcf7565a7b58cb219d01ac8908b952a497",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/superlative_quantifiers_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/superlative_quantifiers_2.jsonl",
        sha256: "4bef08f3e6bd3fbb46021dda34000f3c00222c5576babe4882a8541f6820a106",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/superlative_quantifiers_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/tough_vs_raising_1.jsonl",
        sha256: "8eb3a1ecbdbd969c5b77e2f85b12a39d33723bdc58d673e5067bb456da91d0e5",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/tough_vs_raising_1.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/tough_vs_raising_2.jsonl",
        sha256: "a6db2f24a8aee0c90a9be63e6bb6787fe04e990c518761115f69f27c7438b5ae",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/tough_vs_raising_2.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/transitive.jsonl",
        sha256: "48de2025571897c7590659c793d2d1ce85c247808d4199bad60f66cf2eb179ef",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/transitive.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/wh_island.jsonl",
        sha256: "77824ca8c0008fb7a204e785ca2dcee1b2803f666bb545bd95cb8a51e04f1a4c",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/wh_island.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/wh_questions_object_gap.jsonl",
        sha256: "685c74eb8c199f30a24bba1bfabf9d9dff7962a64430e62b9b5f61d5369241ff",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/wh_questions_object_gap.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/wh_questions_subject_gap.jsonl",
        sha256: "3c33e4efc7182824211ff3288694cf010f4ce84f85c8df67410d784139c722b3",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/wh_questions_subject_gap.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/wh_questions_subject_gap_long_distance.jsonl",
        sha256: "985bae202dbc5566b9b5c51bd77dd9d1dbcd87e0f38e008c34a11d7aa07db788",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/wh_questions_subject_gap_long_distance.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/wh_vs_that_no_gap.jsonl",
        sha256: "6a25d0d1499e9f522696a62ce9dba8c49f58c5446fddc6d852bf562d1016163c",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/wh_vs_that_no_gap.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/wh_vs_that_no_gap_long_distance.jsonl",
        sha256: "968faf59602a67f9cfd7c2e91a314a3f7342fd5daf41c21cadd25288fc85fdcf",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/wh_vs_that_no_gap_long_distance.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/wh_vs_that_with_gap.jsonl",
        sha256: "56f1ca988a8ca368234f12359792c414fdfec2891154e3f8ce6404da1d3f3212",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/wh_vs_that_with_gap.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
    NamedFile {
        path: "blimp/wh_vs_that_with_gap_long_distance.jsonl",
        sha256: "3cb19100d6384264e512801e96c20e172a3c0c7778276b80ed60c65e97b86ab5",
        url: gh!(
            "alexwarstadt/blimp",
            "3e56b06fcabca9b30822fc66435fca6b1aa40bb1",
            "data/wh_vs_that_with_gap_long_distance.jsonl"
        ),
        read_as: ReadAs::MinimalPairs,
    },
];

/// The fields of one line; grouping fields are optional in user files.
#[derive(Deserialize)]
struct Line {
    sentence_good: Option<String>,
    sentence_bad: Option<String>,
    field: Option<String>,
    linguistics_term: Option<String>,
    #[serde(rename = "UID")]
    uid: Option<String>,
}

/// Reads the pairs of `source`: `blimp` (each file checked by sha256 under `home`, fetched from
/// `mirror` or its public URL when missing), a `.jsonl` file, or a folder of them (in name
/// order), with download progress shown when `progress`. With `limit`, only the first `limit`
/// pairs of each paradigm are kept.
pub fn read_pairs(
    source: &str,
    home: &Path,
    mirror: Option<&str>,
    progress: bool,
    limit: Option<usize>,
) -> Result<Vec<MinimalPair>> {
    let files = if source == "blimp" {
        BLIMP
            .iter()
            .map(|file| checked_path("blimp", file, home, mirror, progress))
            .collect::<Result<Vec<_>>>()?
    } else {
        primer_files::roots::check_input("minimal pairs", Path::new(source))?;
        pair_files(Path::new(source))?
    };
    let mut pairs = Vec::new();
    for path in &files {
        pairs.extend(read_file(path)?);
    }
    if let Some(limit) = limit {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        pairs.retain(|pair| {
            let count = seen.entry(pair.paradigm.clone()).or_default();
            *count += 1;
            *count <= limit
        });
    }
    if pairs.is_empty() {
        return Err(DataError::Empty(source.to_string()));
    }
    Ok(pairs)
}

/// A `.jsonl` file, or the `.jsonl` files of a folder in name order.
fn pair_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|_| DataError::NoMatch(path.display().to_string()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::NoMatch(path.display().to_string()));
    }
    Ok(files)
}

/// The pairs of one file; a line that is not a pair stops with its number.
fn read_file(path: &Path) -> Result<Vec<MinimalPair>> {
    let file = std::fs::File::open(path).map_err(DataError::io(path))?;
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let mut pairs = Vec::new();
    let lines = std::io::BufReader::new(primer_files::lines::LineBounded::new(file)).lines();
    for (index, line) in lines.enumerate() {
        let bad = |message: String| DataError::BadRecord {
            path: path.to_path_buf(),
            line: index as u64 + 1,
            message,
        };
        let line = line.map_err(|e| bad(primer_files::lines::line_error(&e)))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Line = serde_json::from_str(&line)
            .map_err(|e| bad(format!("invalid JSON ({e}): each line must be one JSON object")))?;
        let sentence = |value: Option<String>, name: &str| match value {
            Some(text) if !text.trim().is_empty() => Ok(text),
            Some(_) => Err(bad(format!("`{name}` is empty: give both sentences of the pair"))),
            None => Err(bad(format!(
                "no `{name}`: each line needs `sentence_good` and `sentence_bad`"
            ))),
        };
        pairs.push(MinimalPair {
            good: sentence(record.sentence_good, "sentence_good")?,
            bad: sentence(record.sentence_bad, "sentence_bad")?,
            field: record.field.unwrap_or_else(|| "-".into()),
            phenomenon: record.linguistics_term.unwrap_or_else(|| "-".into()),
            paradigm: record.uid.unwrap_or_else(|| stem.clone()),
        });
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blimp_reads_from_the_shared_data_with_its_groups() {
        let home = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
        let pairs = read_pairs("blimp", &home, None, false, Some(3)).unwrap();
        assert_eq!(pairs.len(), 67 * 3);
        // BLiMP's own labels: one paradigm spells its field `syntax/semantics`.
        let fields: std::collections::BTreeSet<&str> = pairs.iter().map(|p| p.field.as_str()).collect();
        let expected = [
            "morphology",
            "semantics",
            "syntax",
            "syntax/semantics",
            "syntax_semantics",
        ];
        assert_eq!(fields.into_iter().collect::<Vec<_>>(), expected);
        assert_eq!(pairs[0].paradigm, "adjunct_island");
        assert_eq!(pairs[0].good, "Who should Derek hug after shocking Richard?");
    }

    #[test]
    fn bad_lines_are_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| {
            let path = dir.path().join("pairs.jsonl");
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let good = r#"{"sentence_good": "a b", "sentence_bad": "b a"}"#;
        let err = |text: &str| {
            read_pairs(&write(text), dir.path(), None, false, None)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&format!("{good}\n{{oops")).contains("pairs.jsonl:2: invalid JSON"));
        assert!(err(r#"{"sentence_good": "a b"}"#).contains(":1: no `sentence_bad`"));
        assert!(err(r#"{"sentence_good": " ", "sentence_bad": "b"}"#).contains("`sentence_good` is empty"));
        assert!(err("").contains("is empty"));
        let pairs = read_pairs(&write(good), dir.path(), None, false, None).unwrap();
        assert_eq!(pairs[0].paradigm, "pairs");
    }
}
