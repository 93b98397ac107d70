//! Compiled components kept on disk between runs: a start with the same component bytes,
//! the same wasmtime and the same engine settings loads the machine code compiled by an
//! earlier run (well under a millisecond for the built-in component) instead of compiling
//! it again with Cranelift (most of a cold start-up).
//!
//! An entry is named by a SHA-256 over the component's bytes and
//! [`Engine::precompile_compatibility_hash`] (the compiler's target, flags and CPU features,
//! the engine's tunables and wasm features, wasmtime's version), so another component,
//! wasmtime or engine configuration names another entry and never loads a stale one.
//! wasmtime checks the same compatibility again when it deserializes.
//!
//! Loading compiled code runs it without compiling or validating it, so only files this
//! user wrote are loaded: the directory and the file must belong to the process's effective
//! user and be writable by nobody else, the file must be a regular file (not followed through
//! a symbolic link), and its contents must carry the key they were stored under and the
//! SHA-256 of the compiled bytes, checked before they reach wasmtime. Entries are written to
//! a temporary file and renamed into place, so a reader sees a whole entry or none; a torn
//! write (a crash before the data reached the disk) fails its checksum. Any failure to load
//! falls back to compiling, and a failure to store only costs the next start a compile.
//!
//! At most [`MAX_ENTRIES`] entries are kept: storing one removes the oldest beyond that.

use anyhow::{Context, Result, bail, ensure};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Entries kept in a cache directory at most; the oldest beyond that go when one is stored.
pub const MAX_ENTRIES: usize = 16;
/// The first bytes of an entry: what it is and the layout's version.
const MAGIC: &[u8; 16] = b"wasilock-cwasm\x00\x01";
/// Magic, key, SHA-256 of the compiled bytes, their length (u64, little-endian).
const HEADER_LEN: usize = MAGIC.len() + 32 + 32 + 8;
/// Entries larger than this are not read (a compiled component of a few hundred MiB of
/// wasm would be; such a component is compiled instead).
const MAX_ENTRY_BYTES: u64 = 1 << 30;
/// The file name extension of entries.
const EXTENSION: &str = ".cwasm";
/// Temporary files older than this, left by a process that died while storing, are removed.
const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(3600);

/// A directory of compiled components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileCache {
    dir: PathBuf,
}

/// Where a component given by [`CompileCache::compile`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from the cache.
    Cached,
    /// Compiled by this call (and stored, unless storing failed: it is logged).
    Compiled,
}

impl CompileCache {
    /// The cache in `dir`, which is created (mode `0700`) when the first entry is stored.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CompileCache { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/wasilock`, else `$HOME/.cache/wasilock`; `None` when neither
    /// variable gives an absolute path.
    pub fn default_dir() -> Option<PathBuf> {
        let absolute = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|path| path.is_absolute())
        };
        let base = absolute("XDG_CACHE_HOME").or_else(|| Some(absolute("HOME")?.join(".cache")))?;
        Some(base.join("wasilock"))
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The component of `wasm` for `engine`: loaded from the cache when an earlier call
    /// stored it, else compiled and stored. Only compiling can fail (with wasmtime's error):
    /// a cache that cannot be read or written is logged and otherwise ignored.
    pub fn compile(&self, engine: &Engine, wasm: &[u8]) -> Result<(Component, Origin)> {
        let key = key(engine, wasm);
        let name = entry_name(&key);
        match self.load(engine, &key, &name) {
            Ok(Some(component)) => {
                tracing::debug!(entry = %self.dir.join(&name).display(), "loaded the compiled component");
                return Ok((component, Origin::Cached));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(
                "not using the compiled component {}: {e:#}; compiling it again",
                self.dir.join(&name).display()
            ),
        }
        let component = Component::new(engine, wasm).map_err(anyhow::Error::from)?;
        match self.store(&key, &name, &component) {
            Ok(()) => {
                tracing::debug!(entry = %self.dir.join(&name).display(), "stored the compiled component")
            }
            Err(e) => tracing::warn!(
                "cannot keep the compiled component in {} (the next start compiles it again; --compile-cache off turns the cache off): {e:#}",
                self.dir.display()
            ),
        }
        Ok((component, Origin::Compiled))
    }

    /// The entry `name` when there is one; an error when there is one that cannot be used.
    fn load(&self, engine: &Engine, key: &[u8; 32], name: &str) -> Result<Option<Component>> {
        let dir = match open_dir(&self.dir) {
            Ok(dir) => dir,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let file = match rustix::fs::openat(
            &dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(file) => file,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e).context("cannot open it"),
        };
        let size = check_ours(&file, FileType::RegularFile)?;
        ensure!(
            size <= MAX_ENTRY_BYTES,
            "it has {size} bytes, more than an entry may have"
        );
        let mut bytes = Vec::with_capacity(size as usize);
        std::fs::File::from(file)
            .read_to_end(&mut bytes)
            .context("cannot read it")?;
        let compiled = verified(&bytes, key)?;
        // SAFETY: `Component::deserialize` runs the machine code in `compiled` without
        // compiling or validating it, so the bytes must be what `Component::serialize` wrote
        // for a compatible engine. They are: the file belongs to this user, in a directory of
        // this user that nobody else can write (`check_ours`, on the opened descriptors, so
        // nothing can be swapped in between), and it holds the key of these wasm bytes and
        // this engine's compatibility hash, and the SHA-256 of exactly these bytes as `store`
        // wrote them (`verified`), so neither another component's code nor a torn or
        // corrupted file gets here. wasmtime itself checks its version and the engine's
        // settings against the ones recorded in the artifact, and refuses with an error.
        let component = unsafe { Component::deserialize(engine, compiled) }
            .map_err(anyhow::Error::from)
            .context("wasmtime refused it")?;
        Ok(Some(component))
    }

    /// Writes `component` as entry `name`: a temporary file renamed into place. Then removes
    /// the oldest entries beyond [`MAX_ENTRIES`].
    fn store(&self, key: &[u8; 32], name: &str, component: &Component) -> Result<()> {
        let compiled = component
            .serialize()
            .map_err(anyhow::Error::from)
            .context("cannot serialize the component")?;
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .context("cannot create the directory")?;
        }
        let dir = open_dir(&self.dir)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let temporary = format!(".{name}.{}.{nanos}.tmp", std::process::id());
        let file = rustix::fs::openat(
            &dir,
            &temporary,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .with_context(|| format!("cannot create {temporary}"))?;
        let written = write_entry(std::fs::File::from(file), key, &compiled)
            .and_then(|()| {
                rustix::fs::renameat(&dir, &temporary, &dir, name).context("cannot rename it")
            })
            .with_context(|| format!("cannot write {temporary}"));
        if written.is_err() {
            let _ = rustix::fs::unlinkat(&dir, &temporary, AtFlags::empty());
        }
        written?;
        prune(&dir, name);
        Ok(())
    }
}

/// The entry's key: SHA-256 over the layout's version, the engine's compatibility hash and
/// the component's bytes.
fn key(engine: &Engine, wasm: &[u8]) -> [u8; 32] {
    /// Feeds what a `Hash` implementation writes into SHA-256.
    struct Sha256Hasher(Sha256);
    impl Hasher for Sha256Hasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            unreachable!("only the SHA-256 is read")
        }
    }
    let mut hasher = Sha256Hasher(Sha256::new());
    hasher.write(MAGIC);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.write(&(wasm.len() as u64).to_le_bytes());
    hasher.write(wasm);
    hasher.0.finalize().into()
}

/// The file name of the entry with `key`.
fn entry_name(key: &[u8; 32]) -> String {
    let mut name: String = key.iter().map(|b| format!("{b:02x}")).collect();
    name.push_str(EXTENSION);
    name
}

/// The compiled bytes of entry `bytes`, when it is whole and was stored under `key`.
fn verified<'a>(bytes: &'a [u8], key: &[u8; 32]) -> Result<&'a [u8]> {
    ensure!(bytes.len() >= HEADER_LEN, "it is too short to be an entry");
    let (header, compiled) = bytes.split_at(HEADER_LEN);
    let (magic, rest) = header.split_at(MAGIC.len());
    let (stored_key, rest) = rest.split_at(32);
    let (digest, length) = rest.split_at(32);
    ensure!(magic == MAGIC, "it is not an entry of this cache layout");
    ensure!(stored_key == key, "it was stored under another key");
    let length = u64::from_le_bytes(length.try_into().expect("8 bytes"));
    ensure!(
        length == compiled.len() as u64,
        "it is truncated ({} of {length} bytes)",
        compiled.len()
    );
    if Sha256::digest(compiled).as_slice() != digest {
        bail!("its checksum does not match (a torn or corrupted file)");
    }
    Ok(compiled)
}

/// Writes an entry: header, then the compiled bytes.
fn write_entry(mut file: std::fs::File, key: &[u8; 32], compiled: &[u8]) -> Result<()> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(key);
    header.extend_from_slice(&Sha256::digest(compiled));
    header.extend_from_slice(&(compiled.len() as u64).to_le_bytes());
    file.write_all(&header)?;
    file.write_all(compiled)?;
    Ok(())
}

/// Opens the cache directory, and checks that it is this user's and nobody else can write it.
fn open_dir(dir: &Path) -> Result<OwnedFd> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(std::io::Error::from)
    .with_context(|| format!("cannot open the directory {}", dir.display()))?;
    check_ours(&fd, FileType::Directory)
        .with_context(|| format!("the directory {}", dir.display()))?;
    Ok(fd)
}

/// Whether `e` says that a file does not exist.
fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// Checks that `fd` is a `kind` that belongs to this process's effective user and that no
/// other user may write; gives its size.
fn check_ours(fd: &OwnedFd, kind: FileType) -> Result<u64> {
    let stat = rustix::fs::fstat(fd).context("cannot stat it")?;
    let found = FileType::from_raw_mode(stat.st_mode);
    ensure!(found == kind, "it is a {found:?}, not a {kind:?}");
    let user = rustix::process::geteuid().as_raw();
    ensure!(
        stat.st_uid == user,
        "it belongs to user {}, not to this process's user {user}",
        stat.st_uid
    );
    ensure!(
        stat.st_mode & 0o022 == 0,
        "users other than its owner may write it (mode {:o})",
        stat.st_mode & 0o7777
    );
    Ok(u64::try_from(stat.st_size).unwrap_or(0))
}

/// Removes the oldest entries beyond [`MAX_ENTRIES`] (never `keep`, the one just stored) and
/// temporary files left for over [`STALE_TEMPORARY`]. Failures are ignored: another process
/// may be pruning too.
fn prune(dir: &OwnedFd, keep: &str) {
    let Ok(entries) = rustix::fs::Dir::read_from(dir) else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut kept = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        let (is_entry, is_temporary) = (
            name.ends_with(EXTENSION) && !name.starts_with('.'),
            name.starts_with('.') && name.ends_with(".tmp"),
        );
        if !is_entry && !is_temporary {
            continue;
        }
        let Ok(stat) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        let mtime = stat.st_mtime;
        if is_temporary {
            if now - mtime > STALE_TEMPORARY.as_secs() as i64 {
                let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
            }
        } else if name != keep {
            kept.push((mtime, name.to_string()));
        }
    }
    // The entry just stored counts as one of the MAX_ENTRIES.
    if kept.len() < MAX_ENTRIES {
        return;
    }
    kept.sort();
    for (_, name) in &kept[..=kept.len() - MAX_ENTRIES] {
        let _ = rustix::fs::unlinkat(dir, name.as_str(), AtFlags::empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::EMBEDDED_GUEST;
    use crate::wasm::engine::new_engine;
    use std::os::unix::fs::PermissionsExt;

    /// An engine as the process makes it.
    fn engine() -> Engine {
        new_engine(16 << 20).unwrap().wasmtime().clone()
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        found.sort();
        found
    }

    /// A cache in `dir` that has stored the embedded guest: the cache, its engine and the
    /// entry's path.
    fn stored_once(dir: &Path) -> (CompileCache, Engine, PathBuf) {
        let cache = CompileCache::new(dir);
        let engine = engine();
        cache.compile(&engine, EMBEDDED_GUEST).unwrap();
        let entry = entries(cache.dir()).pop().unwrap();
        (cache, engine, entry)
    }

    #[test]
    fn a_stored_component_is_loaded_by_the_next_engine_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().join("cache"));
        let engine = engine();
        let (_, origin) = cache.compile(&engine, EMBEDDED_GUEST).unwrap();
        assert_eq!(origin, Origin::Compiled);
        let stored = entries(cache.dir());
        assert_eq!(stored.len(), 1, "{stored:?}");
        let mode = std::fs::metadata(cache.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mode = std::fs::metadata(&stored[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let engine = new_engine(16 << 20).unwrap();
        let (component, origin) = cache.compile(engine.wasmtime(), EMBEDDED_GUEST).unwrap();
        assert_eq!(origin, Origin::Cached);
        let linked = crate::wasm::LinkedComponent::from_component(
            &engine,
            "built-in",
            &component,
            crate::wasm::HttpExport::Auto,
        );
        assert!(linked.is_ok());
    }

    #[test]
    fn another_engine_configuration_or_component_names_another_entry() {
        let small = engine();
        let same = engine();
        assert_eq!(key(&small, EMBEDDED_GUEST), key(&same, EMBEDDED_GUEST));
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        let other = Engine::new(&config).unwrap();
        assert_ne!(key(&small, EMBEDDED_GUEST), key(&other, EMBEDDED_GUEST));
        let mut changed = EMBEDDED_GUEST.to_vec();
        changed.push(0);
        assert_ne!(key(&small, EMBEDDED_GUEST), key(&small, &changed));
    }

    #[test]
    fn a_damaged_or_foreign_entry_is_compiled_again_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, engine, entry) = stored_once(dir.path());
        let good = std::fs::read(&entry).unwrap();
        let damaged: [fn(&mut Vec<u8>); 4] = [
            // Torn: the end never reached the disk.
            |bytes| bytes.truncate(bytes.len() / 2),
            // One bit flipped in the compiled code.
            |bytes| *bytes.last_mut().unwrap() ^= 1,
            // Another key's entry under this name.
            |bytes| bytes[MAGIC.len()] ^= 1,
            // Not an entry at all.
            |bytes| *bytes = b"\x7fELF".to_vec(),
        ];
        for damage in damaged {
            let mut bytes = good.clone();
            damage(&mut bytes);
            std::fs::write(&entry, &bytes).unwrap();
            let (_, origin) = cache.compile(&engine, EMBEDDED_GUEST).unwrap();
            assert_eq!(origin, Origin::Compiled);
            assert_eq!(
                std::fs::read(&entry).unwrap(),
                good,
                "replaced by a good entry"
            );
        }
        // Writable by others: not loaded.
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (_, origin) = cache.compile(&engine, EMBEDDED_GUEST).unwrap();
        assert_eq!(origin, Origin::Compiled);
        let (_, origin) = cache.compile(&engine, EMBEDDED_GUEST).unwrap();
        assert_eq!(origin, Origin::Cached, "the replacement is 0600");
        // A directory others may write: neither loaded nor written.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let (_, origin) = cache.compile(&engine, EMBEDDED_GUEST).unwrap();
        assert_eq!(origin, Origin::Compiled);
    }

    #[test]
    fn a_symbolic_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, engine, entry) = stored_once(&dir.path().join("cache"));
        let elsewhere = dir.path().join("elsewhere");
        std::fs::rename(&entry, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &entry).unwrap();
        let (_, origin) = cache.compile(&engine, EMBEDDED_GUEST).unwrap();
        assert_eq!(origin, Origin::Compiled);
        assert!(!entry.is_symlink(), "replaced by a file");
    }

    #[test]
    fn compile_errors_are_wasmtimes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        let engine = engine();
        assert!(cache.compile(&engine, b"not wasm").is_err());
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn the_oldest_entries_beyond_the_bound_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, engine, stored) = stored_once(dir.path());
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        for i in 0..MAX_ENTRIES + 3 {
            let name = dir.path().join(format!("{i:064x}{EXTENSION}"));
            std::fs::write(&name, b"old").unwrap();
            let file = std::fs::File::options().write(true).open(&name).unwrap();
            file.set_modified(old + std::time::Duration::from_secs(i as u64))
                .unwrap();
        }
        let stale = dir.path().join(".x.tmp");
        std::fs::write(&stale, b"").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old - STALE_TEMPORARY)
            .unwrap();
        std::fs::remove_file(&stored).unwrap();
        cache.compile(&engine, EMBEDDED_GUEST).unwrap();
        let left = entries(dir.path());
        assert_eq!(left.len(), MAX_ENTRIES, "{left:?}");
        assert!(left.contains(&stored));
        assert!(!left.contains(&stale));
        // The newest of the old ones stay.
        let newest = dir
            .path()
            .join(format!("{:064x}{EXTENSION}", MAX_ENTRIES + 2));
        assert!(left.contains(&newest));
        let oldest = dir.path().join(format!("{:064x}{EXTENSION}", 0));
        assert!(!left.contains(&oldest));
    }
}
