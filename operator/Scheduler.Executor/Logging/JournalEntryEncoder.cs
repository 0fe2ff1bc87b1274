using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Serilog.Events;
using Serilog.Formatting.Display;

namespace Dtask.Executor.Logging;

/// <summary>
/// Turns a Serilog event into one datagram of journald's native protocol: a sequence of fields, each either
/// <c>NAME=value\n</c> or, when the value holds a newline, <c>NAME\n</c> + 64-bit little-endian length + bytes + <c>\n</c>.
/// </summary>
/// <remarks>
/// journald also accepts entries too large for one datagram through a sealed memfd passed as ancillary data; that
/// path is not implemented. Instead every field is capped (MESSAGE at <see cref="MaxMessageBytes"/>) so that an
/// entry always fits in a datagram, and an oversized value is cut at a UTF-8 character boundary and marked.
/// </remarks>
internal sealed class JournalEntryEncoder
{
    /// <summary>The cap on MESSAGE, in bytes.</summary>
    public const int MaxMessageBytes = 48 * 1024;

    /// <summary>The cap on the exception text, in bytes.</summary>
    public const int MaxExceptionBytes = 32 * 1024;

    /// <summary>The cap on any other field's value, in bytes.</summary>
    public const int MaxFieldBytes = 4 * 1024;

    /// <summary>The cap on all custom (non-DTASK) fields together, in bytes.</summary>
    public const int MaxCustomFieldsBytes = 32 * 1024;

    private const string TruncationMark = " [truncated]";
    private const int MaxFieldNameLength = 64;

    private static readonly HashSet<string> ReservedFieldNames = new(StringComparer.Ordinal)
    {
        "MESSAGE", "MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER", "SYSLOG_FACILITY", "SYSLOG_PID", "SYSLOG_TIMESTAMP",
        "EXCEPTION", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "ERRNO", "INVOCATION_ID", "USER_INVOCATION_ID",
    };

    private readonly MessageTemplateTextFormatter messageFormatter = new("{Message:l}", CultureInfo.InvariantCulture);
    private readonly string syslogIdentifier;

    public JournalEntryEncoder(string syslogIdentifier)
    {
        ArgumentException.ThrowIfNullOrEmpty(syslogIdentifier);
        this.syslogIdentifier = syslogIdentifier;
    }

    /// <summary>syslog priority (0 emerg .. 7 debug) for a Serilog level.</summary>
    public static int Priority(LogEventLevel level) => level switch
    {
        LogEventLevel.Verbose => 7,
        LogEventLevel.Debug => 7,
        LogEventLevel.Information => 6,
        LogEventLevel.Warning => 4,
        LogEventLevel.Error => 3,
        LogEventLevel.Fatal => 2,
        _ => 6,
    };

    /// <summary>
    /// A journal field name for a property name: <c>ExitCode</c> → <c>EXIT_CODE</c>. Field names are upper-case
    /// letters, digits and underscores, do not start with an underscore or a digit, and are at most 64 characters.
    /// </summary>
    public static string? FieldName(string propertyName)
    {
        var builder = new StringBuilder(propertyName.Length + 8);
        for (var i = 0; i < propertyName.Length; i++)
        {
            var c = propertyName[i];
            if (char.IsAsciiLetterUpper(c) && i > 0 && (char.IsAsciiLetterLower(propertyName[i - 1]) || char.IsAsciiDigit(propertyName[i - 1])))
            {
                builder.Append('_');
            }

            builder.Append(char.IsAsciiLetterOrDigit(c) ? char.ToUpperInvariant(c) : '_');
        }

        var name = builder.ToString().TrimStart('_');
        if (name.Length > 0 && char.IsAsciiDigit(name[0]))
        {
            name = "F_" + name;
        }

        if (name.Length > MaxFieldNameLength)
        {
            name = name[..MaxFieldNameLength];
        }

        return name.Length == 0 ? null : name;
    }

    /// <summary>Encodes an event; <paramref name="messageCap"/> lowers the MESSAGE cap (used to retry a datagram the kernel refused).</summary>
    public byte[] Encode(LogEvent logEvent, int messageCap = MaxMessageBytes, bool includeCustomFields = true)
    {
        ArgumentNullException.ThrowIfNull(logEvent);
        var buffer = new ArrayBufferWriter<byte>(512);

        using (var message = new StringWriter(CultureInfo.InvariantCulture))
        {
            messageFormatter.Format(logEvent, message);
            WriteField(buffer, "MESSAGE", message.ToString(), messageCap);
        }

        WriteField(buffer, "PRIORITY", Priority(logEvent.Level).ToString(CultureInfo.InvariantCulture), MaxFieldBytes);
        WriteField(buffer, "SYSLOG_IDENTIFIER", syslogIdentifier, MaxFieldBytes);

        foreach (var (property, field) in LogProperties.JournalFields)
        {
            if (logEvent.Properties.TryGetValue(property, out var value))
            {
                WriteField(buffer, field, Render(value), MaxFieldBytes);
            }
        }

        if (logEvent.Exception is not null)
        {
            WriteField(buffer, "EXCEPTION", logEvent.Exception.ToString(), Math.Min(messageCap, MaxExceptionBytes));
        }

        if (includeCustomFields)
        {
            WriteCustomFields(buffer, logEvent);
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteCustomFields(ArrayBufferWriter<byte> buffer, LogEvent logEvent)
    {
        var budget = MaxCustomFieldsBytes;
        foreach (var (property, value) in logEvent.Properties)
        {
            if (value is not ScalarValue scalar
                || LogProperties.JournalFields.ContainsKey(property)
                || property == LogProperties.ChildOutput)
            {
                continue;
            }

            var field = FieldName(property);
            if (field is null || ReservedFieldNames.Contains(field) || field.StartsWith("DTASK_", StringComparison.Ordinal))
            {
                continue;
            }

            var valueCap = Math.Min(MaxFieldBytes, budget - field.Length - 10);
            if (valueCap < 64)
            {
                return;
            }

            var before = buffer.WrittenCount;
            WriteField(buffer, field, Render(scalar), valueCap);
            budget -= buffer.WrittenCount - before;
        }
    }

    private static string Render(LogEventPropertyValue value) => value switch
    {
        ScalarValue { Value: null } => "",
        ScalarValue { Value: string s } => s,
        ScalarValue { Value: IFormattable f } => f.ToString(null, CultureInfo.InvariantCulture),
        ScalarValue { Value: var v } => v.ToString() ?? "",
        _ => value.ToString(null, CultureInfo.InvariantCulture),
    };

    private static void WriteField(ArrayBufferWriter<byte> buffer, string name, string value, int maxValueBytes)
    {
        var bytes = Truncate(Encoding.UTF8.GetBytes(value), maxValueBytes);
        var nameBytes = Encoding.ASCII.GetBytes(name);
        buffer.Write(nameBytes);
        if (bytes.AsSpan().IndexOf((byte)'\n') < 0)
        {
            buffer.Write("="u8);
            buffer.Write(bytes);
        }
        else
        {
            buffer.Write("\n"u8);
            BinaryPrimitives.WriteUInt64LittleEndian(buffer.GetSpan(8), (ulong)bytes.Length);
            buffer.Advance(8);
            buffer.Write(bytes);
        }

        buffer.Write("\n"u8);
    }

    /// <summary>Cuts UTF-8 bytes to at most <paramref name="maxBytes"/>, never inside a character, and marks the cut.</summary>
    public static byte[] Truncate(byte[] bytes, int maxBytes)
    {
        if (bytes.Length <= maxBytes)
        {
            return bytes;
        }

        var mark = Encoding.UTF8.GetBytes(TruncationMark);
        var cut = Math.Max(0, maxBytes - mark.Length);
        while (cut > 0 && (bytes[cut] & 0xC0) == 0x80)
        {
            cut--;
        }

        var result = new byte[cut + mark.Length];
        bytes.AsSpan(0, cut).CopyTo(result);
        mark.CopyTo(result.AsSpan(cut));
        return result;
    }
}
