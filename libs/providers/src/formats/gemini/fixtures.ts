/**
 * Test fixtures in the shape `streamGenerateContent?alt=sse` sends: CRLF-separated `data:` frames, each
 * a whole GenerateContentResponse; running usageMetadata (prompt only) on early chunks; a thought
 * summary part; a function call arriving whole with its thoughtSignature; the full usage on the last
 * chunk together with finishReason.
 */
const chunks = [
  {
    candidates: [
      { content: { parts: [{ text: 'Checking the plan…', thought: true }], role: 'model' }, index: 0 },
    ],
    usageMetadata: { promptTokenCount: 1510, totalTokenCount: 1510, cachedContentTokenCount: 1024 },
    modelVersion: 'gemini-2.5-flash',
    responseId: 'mcDJaP3sA6ey1dkPqp7fkAY',
  },
  {
    candidates: [
      { content: { parts: [{ text: 'Je regarde la météo à Zürich ' }], role: 'model' }, index: 0 },
    ],
    usageMetadata: { promptTokenCount: 1510, totalTokenCount: 1510, cachedContentTokenCount: 1024 },
    modelVersion: 'gemini-2.5-flash',
    responseId: 'mcDJaP3sA6ey1dkPqp7fkAY',
  },
  {
    candidates: [{ content: { parts: [{ text: '☀️ pour vous.' }], role: 'model' }, index: 0 }],
    usageMetadata: { promptTokenCount: 1510, totalTokenCount: 1510, cachedContentTokenCount: 1024 },
    modelVersion: 'gemini-2.5-flash',
    responseId: 'mcDJaP3sA6ey1dkPqp7fkAY',
  },
  {
    candidates: [
      {
        content: {
          parts: [
            {
              functionCall: { name: 'get_weather', args: { city: 'Zürich', unit: 'celsius' } },
              thoughtSignature: 'CiQBcsjafHc+Lk2f/8xA3Q==',
            },
            { functionCall: { name: 'get_time', args: { tz: 'Europe/Zurich' } } },
          ],
          role: 'model',
        },
        finishReason: 'STOP',
        index: 0,
      },
    ],
    usageMetadata: {
      promptTokenCount: 1510,
      candidatesTokenCount: 42,
      totalTokenCount: 1650,
      cachedContentTokenCount: 1024,
      thoughtsTokenCount: 98,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: 1510 }],
    },
    modelVersion: 'gemini-2.5-flash',
    responseId: 'mcDJaP3sA6ey1dkPqp7fkAY',
  },
];

export const GEMINI_TOOL_STREAM = chunks.map((chunk) => `data: ${JSON.stringify(chunk)}\r\n\r\n`).join('');

/** The same answer, non-streamed. */
export const GEMINI_TOOL_RESPONSE = {
  candidates: [
    {
      content: {
        parts: [
          { text: 'Checking the plan…', thought: true },
          { text: 'Je regarde la météo à Zürich ☀️ pour vous.' },
          {
            functionCall: { name: 'get_weather', args: { city: 'Zürich', unit: 'celsius' } },
            thoughtSignature: 'CiQBcsjafHc+Lk2f/8xA3Q==',
          },
          { functionCall: { name: 'get_time', args: { tz: 'Europe/Zurich' } } },
        ],
        role: 'model',
      },
      finishReason: 'STOP',
      index: 0,
      safetyRatings: [],
    },
  ],
  usageMetadata: {
    promptTokenCount: 1510,
    candidatesTokenCount: 42,
    totalTokenCount: 1650,
    cachedContentTokenCount: 1024,
    thoughtsTokenCount: 98,
  },
  modelVersion: 'gemini-2.5-flash',
  responseId: 'mcDJaP3sA6ey1dkPqp7fkAY',
};
