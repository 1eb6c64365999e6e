//! The text fields' tokenizer: jieba's segmentation for text with Chinese or Japanese in it
//! (written without spaces: "华为智能手机旗舰版" is 华为 / 智能 / 手机 / 智能手机 / 旗舰 / 旗舰版), and
//! tantivy's simple tokenizer for the rest, most of a catalogue, which is cheaper to index
//! and to search. Either way only words come out (jieba also yields the spaces and punctuation
//! between them), numbered one after another.

use tantivy::tokenizer::{SimpleTokenStream, SimpleTokenizer, Token, TokenStream, Tokenizer};
use tantivy_jieba::{JiebaTokenStream, JiebaTokenizer};

#[derive(Clone, Default)]
pub struct MarketTokenizer {
    simple: SimpleTokenizer,
    jieba: JiebaTokenizer,
}

/// Han ideographs (and their extension A and compatibility forms), hiragana and katakana.
fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{30ff}' | '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{f900}'..='\u{faff}')
}

pub enum MarketTokenStream<'a> {
    Simple(SimpleTokenStream<'a>),
    Jieba { words: JiebaTokenStream<'a>, next_position: usize },
}

impl Tokenizer for MarketTokenizer {
    type TokenStream<'a> = MarketTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> MarketTokenStream<'a> {
        if text.chars().any(is_cjk) {
            MarketTokenStream::Jieba { words: self.jieba.token_stream(text), next_position: 0 }
        } else {
            MarketTokenStream::Simple(self.simple.token_stream(text))
        }
    }
}

impl TokenStream for MarketTokenStream<'_> {
    fn advance(&mut self) -> bool {
        match self {
            MarketTokenStream::Simple(words) => words.advance(),
            MarketTokenStream::Jieba { words, next_position } => {
                while words.advance() {
                    if words.token().text.chars().any(char::is_alphanumeric) {
                        let token = words.token_mut();
                        (token.position, token.position_length) = (*next_position, 1);
                        *next_position += 1;
                        return true;
                    }
                }
                false
            }
        }
    }

    fn token(&self) -> &Token {
        match self {
            MarketTokenStream::Simple(words) => words.token(),
            MarketTokenStream::Jieba { words, .. } => words.token(),
        }
    }

    fn token_mut(&mut self) -> &mut Token {
        match self {
            MarketTokenStream::Simple(words) => words.token_mut(),
            MarketTokenStream::Jieba { words, .. } => words.token_mut(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut tokenizer = MarketTokenizer::default();
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            assert_eq!(stream.token().position, out.len(), "positions one after another");
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn chinese_is_segmented_and_latin_text_is_split_on_its_spaces() {
        assert_eq!(words("red kettle 12"), ["red", "kettle", "12"]);
        let huawei = words("华为智能手机 5G, 旗舰版！");
        for word in ["华为", "智能手机", "手机", "5G", "旗舰版"] {
            assert!(huawei.iter().any(|w| w == word), "{word} not in {huawei:?}");
        }
        assert!(huawei.iter().all(|w| w.chars().any(char::is_alphanumeric)), "{huawei:?}");
    }
}
