using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace CrmEngine.Edi;

/// <summary>
/// Command-line entry points for <c>crm edi parse|validate|ack &lt;file&gt;</c>. Each returns the process exit code:
/// <see cref="ExitOk"/> (0), <see cref="ExitInvalid"/> (1: validation issues / acknowledgement not all accepted),
/// <see cref="ExitUnreadable"/> (2: missing file, empty, not EDI, truncated; the message names file, line and byte).
/// </summary>
public static class EdiCommands
{
    public const int ExitOk = 0;
    public const int ExitInvalid = 1;
    public const int ExitUnreadable = 2;

    private static readonly JsonWriterOptions JsonOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly JsonSerializerOptions DocumentJson = new() { Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } };

    /// <summary>
    /// Prints the file as JSON: interchanges, groups, transaction sets with their segments, typed document and issues.
    /// The document is spooled to a temporary file and printed only when the whole input was read: input that cannot be
    /// read (empty, not EDI, truncated) or is in a version the codec has no definitions for prints only the error, with
    /// its position, and returns <see cref="ExitUnreadable"/>; never half a document.
    /// </summary>
    public static int Parse(string file, TextWriter output, TextWriter? error = null, bool includeSegments = true)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(output);
        error ??= output;
        var unsupported = new List<EdiIssue>();
        bool anyIssue = false;
        try
        {
            using var spool = new FileStream(Path.Combine(Path.GetTempPath(), $"crm-edi-{Guid.NewGuid():N}.json"), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
            using (var json = new Utf8JsonWriter(spool, JsonOptions))
            {
                anyIssue = WriteJson(file, json, includeSegments, unsupported);
            }

            if (unsupported.Count > 0)
            {
                foreach (var issue in unsupported)
                {
                    error.WriteLine($"error: {file}: {issue}");
                }

                return ExitUnreadable;
            }

            spool.Position = 0;
            using (var sink = new TextWriterStream(output))
            {
                spool.CopyTo(sink);
            }

            output.WriteLine();
            output.Flush();
            return anyIssue ? ExitInvalid : ExitOk;
        }
        catch (Exception ex) when (ex is EdiException or IOException or UnauthorizedAccessException)
        {
            error.WriteLine(Describe(file, ex));
            return ExitUnreadable;
        }
    }

    /// <summary>The JSON of <see cref="Parse"/>; collects what is in an unsupported version into <paramref name="unsupported"/>. True when any issue was found.</summary>
    private static bool WriteJson(string file, Utf8JsonWriter json, bool includeSegments, List<EdiIssue> unsupported)
    {
        using var reader = EdiStreamReader.Open(file);
        var validator = new EdiValidator();
        json.WriteStartObject();
        json.WriteString("file", file);
        json.WriteStartArray("interchanges");
        EdiItemKind k;
        bool anyIssue = false;
        while ((k = reader.Read()) != EdiItemKind.None)
        {
            switch (k)
            {
                case EdiItemKind.InterchangeStart:
                    var i = reader.Interchange!;
                    unsupported.AddRange(i.Issues.Where(x => x.Kind == EdiErrorKind.UnsupportedInterchangeVersion));
                    json.WriteStartObject();
                    json.WriteString("standard", i.Standard.ToString());
                    json.WriteString("controlNumber", i.ControlNumber);
                    json.WriteString("sender", Qualified(i.SenderId, i.SenderQualifier));
                    json.WriteString("receiver", Qualified(i.ReceiverId, i.ReceiverQualifier));
                    json.WriteString("date", i.Date);
                    json.WriteString("time", i.Time);
                    json.WriteString("version", i.Version);
                    if (i.CharacterSet.Length > 0)
                    {
                        json.WriteString("characterSet", i.CharacterSet);
                    }

                    json.WriteString("delimiters", i.Delimiters.ToString());
                    json.WriteNumber("line", i.Line);
                    json.WriteStartArray("groups");
                    break;
                case EdiItemKind.GroupStart:
                    var g = reader.Group!;
                    json.WriteStartObject();
                    if (!g.IsImplicit)
                    {
                        json.WriteString("functionalId", g.FunctionalId);
                        json.WriteString("controlNumber", g.ControlNumber);
                        json.WriteString("version", g.Version);
                    }

                    json.WriteStartArray("transactionSets");
                    break;
                case EdiItemKind.TransactionSet:
                    var set = reader.TransactionSet!;
                    var tree = validator.Validate(set, buildTree: includeSegments);
                    if (!validator.Definitions.HasVersion(set.Standard, set.Version))
                    {
                        // A version the codec has no definitions for: nothing in it can be read as a document.
                        unsupported.AddRange(set.Issues.Where(x => x.Kind == EdiErrorKind.SetNotSupported));
                    }

                    anyIssue |= set.Issues.Count > 0;
                    WriteSet(json, set, includeSegments, tree);
                    json.Flush();
                    break;
                case EdiItemKind.GroupEnd:
                    json.WriteEndArray();
                    WriteIssues(json, reader.Group!.Issues);
                    anyIssue |= reader.Group!.Issues.Count > 0;
                    json.WriteEndObject();
                    break;
                case EdiItemKind.InterchangeEnd:
                    json.WriteEndArray();
                    WriteIssues(json, reader.Interchange!.Issues);
                    anyIssue |= reader.Interchange!.Issues.Count > 0;
                    json.WriteEndObject();
                    break;
            }
        }

        json.WriteEndArray();
        json.WriteEndObject();
        json.Flush();
        return anyIssue;
    }

    /// <summary>Lists every validation issue with file, line, byte, control numbers, segment/element position and code.</summary>
    public static int Validate(string file, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        EdiValidationReport report;
        try
        {
            report = EdiValidation.ValidateFile(file);
        }
        catch (Exception ex) when (ex is EdiException or IOException or UnauthorizedAccessException)
        {
            output.WriteLine(Describe(file, ex));
            return ExitUnreadable;
        }

        int issues = 0;
        foreach (var issue in report.AllIssues)
        {
            issues++;
            output.WriteLine($"{file}: {issue}");
        }

        int rejected = report.Interchanges.Sum(i => i.Groups.Sum(g => g.SetCount - g.AcceptedCount));
        output.WriteLine($"{file}: {report.Interchanges.Count} interchange(s), {report.SetCount} transaction set(s), {issues} issue(s), {rejected} set(s) rejected");
        return issues == 0 ? ExitOk : ExitInvalid;
    }

    /// <summary>
    /// Writes the acknowledgement that would be sent (997 for X12 before 00501, 999 from 00501, CONTRL for EDIFACT, unless
    /// <paramref name="type"/> says otherwise) to <paramref name="outputPath"/>, or to <paramref name="output"/> when no path is given.
    /// </summary>
    public static int Ack(string file, TextWriter output, string? outputPath = null, EdiAckType? type = null, IEdiControlNumbers? controlNumbers = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        EdiValidationReport report;
        try
        {
            report = EdiValidation.ValidateFile(file);
        }
        catch (Exception ex) when (ex is EdiException or IOException or UnauthorizedAccessException)
        {
            output.WriteLine(Describe(file, ex));
            return ExitUnreadable;
        }

        using var ms = new MemoryStream();
        try
        {
            EdiAcknowledgements.Write(report, ms, type, controlNumbers);
        }
        catch (EdiException ex)
        {
            output.WriteLine(Describe(file, ex));
            return ExitUnreadable;
        }

        bool allAccepted = report.Interchanges.All(i => i.Status == EdiAckStatus.Accepted);
        if (outputPath != null)
        {
            File.WriteAllBytes(outputPath, ms.ToArray());
            foreach (var i in report.Interchanges)
            {
                // The type written: the one asked for, else the default for the interchange's standard and version.
                string written = (type ?? EdiAcknowledgements.DefaultTypeFor(i.Header)) switch
                {
                    EdiAckType.X12_997 => "997",
                    EdiAckType.X12_999 => "999",
                    _ => "CONTRL",
                };
                output.WriteLine($"{file}: interchange {i.Header.ControlNumber}: {written} {i.Status} ({i.Groups.Sum(g => g.AcceptedCount)} of {i.Groups.Sum(g => g.SetCount)} set(s) accepted) -> {outputPath}");
            }
        }
        else
        {
            var enc = report.Interchanges.Count > 0 ? report.Interchanges[0].Header.Encoding : Encoding.UTF8;
            output.WriteLine(enc.GetString(ms.ToArray()));
        }

        return allAccepted ? ExitOk : ExitInvalid;
    }

    /// <summary>
    /// Dispatcher for <c>crm edi &lt;verb&gt; &lt;file&gt; [--out PATH] [--type 997|999|contrl] [--no-segments]</c>:
    /// verbs parse, validate, ack. Usage errors print a line to <paramref name="error"/> and return <see cref="ExitUnreadable"/>.
    /// </summary>
    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(error);
        const string usage = "usage: crm edi parse|validate|ack <file> [--out PATH] [--type 997|999|contrl] [--no-segments]";
        if (args.Count < 2)
        {
            error.WriteLine(usage);
            return ExitUnreadable;
        }

        string? outPath = null;
        EdiAckType? type = null;
        bool segments = true;
        for (int i = 2; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--out" when i + 1 < args.Count:
                    outPath = args[++i];
                    break;
                case "--type" when i + 1 < args.Count:
                    type = args[++i].ToUpperInvariant() switch
                    {
                        "997" => EdiAckType.X12_997,
                        "999" => EdiAckType.X12_999,
                        "CONTRL" => EdiAckType.Contrl,
                        _ => null,
                    };
                    if (type == null)
                    {
                        error.WriteLine($"error: unknown acknowledgement type '{args[i]}' (997, 999 or contrl)");
                        return ExitUnreadable;
                    }

                    break;
                case "--no-segments":
                    segments = false;
                    break;
                default:
                    error.WriteLine($"error: unknown option '{args[i]}'; {usage}");
                    return ExitUnreadable;
            }
        }

        return args[0] switch
        {
            "parse" => Parse(args[1], output, error, segments),
            "validate" => Validate(args[1], output),
            "ack" => Ack(args[1], output, outPath, type),
            _ => Usage(error, usage),
        };
    }

    private static int Usage(TextWriter error, string usage)
    {
        error.WriteLine(usage);
        return ExitUnreadable;
    }

    private static string Describe(string file, Exception ex) => ex switch
    {
        EdiException { SourceName: not null } e => $"error: {e.Message}",
        EdiException e => $"error: {file}: {e.Message}",
        FileNotFoundException => $"error: {file}: file not found",
        _ => $"error: {file}: {ex.Message}",
    };

    private static string Qualified(string id, string qualifier) => qualifier.Length > 0 ? $"{qualifier}:{id}" : id;

    private static void WriteSet(Utf8JsonWriter json, EdiTransactionSet set, bool includeSegments, EdiNode? tree)
    {
        json.WriteStartObject();
        json.WriteString("id", set.Id);
        json.WriteString("controlNumber", set.ControlNumber);
        json.WriteString("version", set.Version);
        json.WriteNumber("line", set.Line);
        json.WriteNumber("segmentCount", set.Segments.Count);
        if (EdiDocuments.FromSet(set) is { } doc)
        {
            json.WritePropertyName("document");
            JsonSerializer.Serialize(json, doc, DocumentJson);
        }

        if (includeSegments)
        {
            // Segments nested by loop / segment group as the definition places them; flat when there is no definition.
            json.WriteStartArray("segments");
            if (tree != null)
            {
                WriteNodes(json, set, tree);
            }
            else
            {
                for (int s = 0; s < set.Segments.Count; s++)
                {
                    WriteSegment(json, set.Segments[s]);
                }
            }

            json.WriteEndArray();
        }

        WriteIssues(json, set.Issues);
        json.WriteEndObject();
    }

    private static void WriteNodes(Utf8JsonWriter json, EdiTransactionSet set, EdiNode node)
    {
        foreach (var child in node.Children)
        {
            if (child.IsLoop)
            {
                json.WriteStartObject();
                json.WriteString("loop", child.LoopId);
                json.WriteStartArray("segments");
                WriteNodes(json, set, child);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            else
            {
                WriteSegment(json, set.Segments[child.SegmentIndex]);
            }
        }
    }

    private static void WriteSegment(Utf8JsonWriter json, EdiSegment seg)
    {
        var d = seg.List.Delimiters;
        json.WriteStartArray();
        json.WriteStringValue(seg.Tag);
        for (int e = 1; e <= seg.ElementCount; e++)
        {
            int repeats = seg.RepeatCount(e);
            if (repeats > 1)
            {
                // A repeating data element: {"repeats": ["value", ["comp1", "comp2"], ...]}.
                json.WriteStartObject();
                json.WriteStartArray("repeats");
                for (int r = 1; r <= repeats; r++)
                {
                    WriteValue(json, seg, e, r, d);
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }
            else
            {
                WriteValue(json, seg, e, 1, d);
            }
        }

        json.WriteEndArray();
    }

    private static void WriteValue(Utf8JsonWriter json, EdiSegment seg, int element, int repeat, EdiDelimiters d)
    {
        int comps = EdiText.CountComponents(seg.RawRepeat(element, repeat), d);
        if (comps > 1)
        {
            json.WriteStartArray();
            for (int c = 1; c <= comps; c++)
            {
                json.WriteStringValue(seg.Get(element, c, repeat));
            }

            json.WriteEndArray();
        }
        else
        {
            json.WriteStringValue(seg.Get(element, 0, repeat));
        }
    }

    private static void WriteIssues(Utf8JsonWriter json, IReadOnlyList<EdiIssue> issues)
    {
        json.WriteStartArray("issues");
        foreach (var i in issues)
        {
            json.WriteStartObject();
            json.WriteString("kind", i.Kind.ToString());
            json.WriteString("code", i.Code);
            json.WriteString("level", i.Level.ToString());
            json.WriteString("message", i.Message);
            json.WriteNumber("line", i.Line);
            json.WriteNumber("byte", i.ByteOffset);
            if (i.SegmentPosition > 0)
            {
                json.WriteNumber("segmentPosition", i.SegmentPosition);
            }

            if (i.SegmentTag != null)
            {
                json.WriteString("segment", i.SegmentTag);
            }

            if (i.ElementPosition > 0)
            {
                json.WriteNumber("element", i.ElementPosition);
            }

            if (i.ComponentPosition > 0)
            {
                json.WriteNumber("component", i.ComponentPosition);
            }

            if (i.Repetition > 0)
            {
                json.WriteNumber("repetition", i.Repetition);
            }

            json.WriteEndObject();
        }

        json.WriteEndArray();
    }

    /// <summary>Forwards UTF-8 bytes to a TextWriter (decoder keeps split characters intact).</summary>
    private sealed class TextWriterStream(TextWriter target) : Stream
    {
        private readonly Decoder _decoder = new UTF8Encoding(false).GetDecoder();
        private char[] _chars = new char[4096];

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => target.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            int need = _decoder.GetCharCount(buffer, false);
            if (_chars.Length < need)
            {
                _chars = new char[need];
            }

            int n = _decoder.GetChars(buffer, _chars, false);
            target.Write(_chars, 0, n);
        }
    }
}
